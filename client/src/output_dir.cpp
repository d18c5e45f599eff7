#include "ferry/client/output_dir.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/fs.h>
#include <mutex>
#include <set>
#include <unistd.h>
#include <utility>

namespace ferry::client {

namespace stdfs = std::filesystem;

local_error local(const std::string& what, const stdfs::path& p, int err) {
    return {exit_code::local_io, what + " " + p.string() + ": " + std::strerror(err)};
}

std::optional<std::string> not_ours(const struct stat& st) {
    if (S_ISLNK(st.st_mode))
        return "a symbolic link";
    if (S_ISDIR(st.st_mode))
        return "a directory";
    if (S_ISFIFO(st.st_mode))
        return "a fifo";
    if (S_ISSOCK(st.st_mode))
        return "a socket";
    if (!S_ISREG(st.st_mode))
        return "a device";
    if (st.st_nlink != 1)
        return "a file with " + std::to_string(st.st_nlink) + " hard links";
    if (st.st_uid != ::geteuid())
        return "a file owned by another user";
    return std::nullopt;
}

namespace {

/// The refusal of a name ferry would write that holds something ferry did not create.
local_error refusal(const stdfs::path& shown, const std::string& what) {
    return {exit_code::exists, shown.string() + " is " + what +
                                   ", not a file ferry created; remove it and run ferry again"};
}

} // namespace

local_error output_dir::open(const stdfs::path& file, output_dir& out) {
    out.path_ = file.parent_path();
    const auto dir = out.path_.empty() ? stdfs::path{"."} : out.path_;
    // O_RDONLY rather than O_PATH: the directory is fsynced through this descriptor. A
    // directory one may write but not list still works through O_PATH (without the fsync).
    out.fd_ = unique_fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!out.fd_ && errno == EACCES)
        out.fd_ = unique_fd{::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
    if (!out.fd_)
        return local("cannot open the output directory", dir, errno);
    return {};
}

stdfs::path output_dir::shown(const std::string& name) const {
    return path_ / name;
}

std::optional<struct stat> output_dir::status(const std::string& name, local_error& error) const {
    struct stat st {};
    if (::fstatat(fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
        return st;
    if (errno != ENOENT)
        error = local("cannot examine", shown(name), errno);
    return std::nullopt;
}

unique_fd output_dir::open_ours(const std::string& name, int flags, bool create, bool& created,
                                local_error& error) const {
    // O_NONBLOCK: opening a planted fifo or device must not block (or do anything); it is
    // refused below. O_NOFOLLOW: a symlink at the last component fails with ELOOP.
    const int base = flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    created = false;
    int fd = -1;
    if (create) {
        fd = ::openat(fd_.get(), name.c_str(), base | O_CREAT | O_EXCL, 0644);
        created = fd >= 0;
    }
    if (fd < 0 && (!create || errno == EEXIST))
        fd = ::openat(fd_.get(), name.c_str(), base);
    if (fd < 0) {
        const int err = errno;
        local_error ignored;
        const auto st = status(name, ignored);
        const auto what = st ? not_ours(*st) : std::nullopt;
        error = what ? refusal(shown(name), *what)
                     : local(create ? "cannot create" : "cannot open", shown(name), err);
        return {};
    }
    unique_fd owned{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        error = local("cannot examine", shown(name), errno);
        return {};
    }
    if (const auto what = not_ours(st)) {
        error = refusal(shown(name), *what);
        return {};
    }
    if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        error = local("cannot open", shown(name), errno);
        return {};
    }
    return owned;
}

local_error output_dir::write_atomically(const std::string& name, const std::string& text) const {
    const auto tmp = name + ".tmp";
    // A stale temporary (a crash mid-write) or anything planted there goes first; O_EXCL then
    // refuses whatever appears in between instead of following it.
    ::unlinkat(fd_.get(), tmp.c_str(), 0);
    const int fd = ::openat(fd_.get(), tmp.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        const int err = errno;
        local_error ignored;
        const auto st = err == EEXIST ? status(tmp, ignored) : std::nullopt;
        if (st)
            return refusal(shown(tmp), not_ours(*st).value_or("a file that reappeared"));
        return local("cannot create", shown(tmp), err);
    }
    unique_fd owned{fd};
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    if (!ok) {
        const int err = errno;
        ::unlinkat(fd_.get(), tmp.c_str(), 0);
        return local("writing", shown(tmp), err);
    }
    // renameat replaces the name `name`, whatever it is, and never follows it.
    if (::renameat(fd_.get(), tmp.c_str(), fd_.get(), name.c_str()) != 0) {
        const int err = errno;
        ::unlinkat(fd_.get(), tmp.c_str(), 0);
        return local("writing", shown(name), err);
    }
    sync(); // the rename itself must survive a crash too
    return {};
}

bool output_dir::rename(const std::string& from, const std::string& to, bool replace) const {
    if (replace)
        return ::renameat(fd_.get(), from.c_str(), fd_.get(), to.c_str()) == 0;
    if (::renameat2(fd_.get(), from.c_str(), fd_.get(), to.c_str(), RENAME_NOREPLACE) == 0)
        return true;
    if (errno != EINVAL && errno != ENOSYS)
        return false;
    if (::linkat(fd_.get(), from.c_str(), fd_.get(), to.c_str(), 0) != 0)
        return false;
    ::unlinkat(fd_.get(), from.c_str(), 0);
    return true;
}

void output_dir::remove(const std::string& name) const {
    ::unlinkat(fd_.get(), name.c_str(), 0);
}

void output_dir::sync() const {
    ::fsync(fd_.get());
}

local_error output_dir::lock(int fd, const std::string& name, const std::string& output,
                             bool& stale, inode_claim& claim) const {
    stale = false;
    struct flock whole {};
    whole.l_type = F_WRLCK;
    whole.l_whence = SEEK_SET; // l_start = l_len = 0: the whole file, however long it grows
    if (::fcntl(fd, F_SETLK, &whole) != 0) {
        if (errno != EAGAIN && errno != EACCES)
            return local("cannot lock", shown(name), errno);
        struct flock holder = whole;
        const bool known = ::fcntl(fd, F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK;
        return {exit_code::busy,
                shown(output).string() + " is being downloaded by another ferry (" +
                    (known ? "pid " + std::to_string(holder.l_pid) + ", " : "") + "it holds " +
                    shown(name).string() + "); wait for it to finish"};
    }
    stale = !names(name, fd);
    if (stale)
        return {};
    struct stat held {};
    if (::fstat(fd, &held) != 0)
        return local("cannot examine", shown(name), errno);
    if (!claim.take(held))
        return {exit_code::busy, shown(output).string() +
                                     " is being downloaded by this command under another name (" +
                                     shown(name).string() + " is the same file)"};
    return {};
}

bool output_dir::names(const std::string& name, int fd) const {
    struct stat held {};
    struct stat named {};
    return ::fstat(fd, &held) == 0 &&
           ::fstatat(fd_.get(), name.c_str(), &named, AT_SYMLINK_NOFOLLOW) == 0 &&
           named.st_dev == held.st_dev && named.st_ino == held.st_ino;
}

namespace {
std::mutex claims_mutex;
std::set<std::pair<dev_t, ino_t>> claims; ///< the files this process downloads into
} // namespace

inode_claim::inode_claim(inode_claim&& o) noexcept : key_(std::exchange(o.key_, std::nullopt)) {}

inode_claim& inode_claim::operator=(inode_claim&& o) noexcept {
    if (this != &o) {
        release();
        key_ = std::exchange(o.key_, std::nullopt);
    }
    return *this;
}

inode_claim::~inode_claim() {
    release();
}

bool inode_claim::take(const struct stat& st) {
    release();
    const std::lock_guard hold{claims_mutex};
    if (!claims.emplace(st.st_dev, st.st_ino).second)
        return false;
    key_.emplace(st.st_dev, st.st_ino);
    return true;
}

bool inode_claim::claimed(const struct stat& st) {
    const std::lock_guard hold{claims_mutex};
    return claims.count({st.st_dev, st.st_ino}) > 0;
}

void inode_claim::release() noexcept {
    if (!key_)
        return;
    const std::lock_guard hold{claims_mutex};
    claims.erase(*key_);
    key_.reset();
}

} // namespace ferry::client
