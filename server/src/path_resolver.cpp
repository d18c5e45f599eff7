#include "ferry/server/path_resolver.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdexcept>
#include <string>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace ferry::server {
namespace {

using protocol::status;

int sys_openat2(int dirfd, const char* path, const open_how& how) noexcept {
    return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

resolved failure(status s, std::string reason) {
    resolved r;
    r.status = s;
    r.reason = std::move(reason);
    return r;
}

normalized_path refused(status s, std::string reason) {
    return {s, {}, std::move(reason), false};
}

resolved from_errno(int err) {
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return failure(status::not_found, "not found");
    case EXDEV:
        return failure(status::forbidden, "forbidden: the path leaves the served root");
    case ELOOP:
        return failure(status::forbidden, "forbidden: symbolic link not allowed here");
    case EACCES:
    case EPERM:
        return failure(status::forbidden, "forbidden: permission denied");
    case ENXIO:
        return failure(status::not_regular_file, "not a regular file");
    case ENAMETOOLONG: // normalize bounds segments and the path: the file system's limit is lower
        return failure(status::bad_request,
                       "bad request: a path segment is longer than the file system allows");
    default:
        return failure(status::internal_error,
                       std::string{"internal error: "} + std::strerror(err));
    }
}

} // namespace

protocol::file_identity make_identity(const struct stat& st) noexcept {
    protocol::file_identity id{};
    const std::uint64_t fields[] = {
        static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
        static_cast<std::uint64_t>(st.st_size), static_cast<std::uint64_t>(mtime_ns(st))};
    std::size_t i = 0;
    for (std::uint64_t f : fields)
        for (int shift = 56; shift >= 0; shift -= 8)
            id[i++] = static_cast<std::byte>((f >> shift) & 0xFFU);
    return id;
}

std::int64_t mtime_ns(const struct stat& st) noexcept {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

protocol::file_kind kind_of(const struct stat& st) noexcept {
    if (S_ISREG(st.st_mode))
        return protocol::file_kind::regular;
    if (S_ISDIR(st.st_mode))
        return protocol::file_kind::directory;
    if (S_ISLNK(st.st_mode))
        return protocol::file_kind::symlink;
    return protocol::file_kind::other;
}

normalized_path normalize(std::string_view path) {
    if (!path.empty() && path.front() == '/')
        return refused(status::bad_request,
                       "bad request: the path must be relative to the served root");
    std::vector<std::string_view> parts;
    while (!path.empty()) {
        const auto slash = path.find('/');
        const auto part = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
        if (part.size() > max_segment_size)
            return refused(status::bad_request,
                           "bad request: a path segment is longer than 255 bytes");
        if (part.empty() || part == ".")
            continue;
        if (part == "..") {
            if (parts.empty())
                return refused(status::forbidden, "forbidden: the path leaves the served root");
            parts.pop_back();
            continue;
        }
        parts.push_back(part);
    }
    if (parts.empty())
        return {status::ok, ".", {}};
    normalized_path n;
    for (auto p : parts) {
        if (!n.path.empty())
            n.path += '/';
        n.path += p;
        n.dotfile = n.dotfile || is_dotfile(p);
    }
    if (n.path.size() > max_resolvable_path_size)
        return refused(status::too_large,
                       "too large: the path is " + std::to_string(n.path.size()) +
                           " bytes without its empty and dot segments; this server resolves at "
                           "most " +
                           std::to_string(max_resolvable_path_size));
    return n;
}

bool is_dotfile(std::string_view name) noexcept {
    return !name.empty() && name.front() == '.' && name != "." && name != "..";
}

path_resolver::path_resolver(const std::filesystem::path& root, symlink_policy policy,
                             dotfile_policy dotfiles)
    : policy_(policy), dotfiles_(dotfiles) {
    root_.reset(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root_)
        throw std::system_error(errno, std::generic_category(),
                                "cannot open root " + root.string());
    // Probe openat2 once, so an old kernel fails at start-up rather than on every request.
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH;
    unique_fd probe{sys_openat2(root_.get(), ".", how)};
    if (!probe)
        throw std::system_error(
            errno, std::generic_category(),
            "openat2(RESOLVE_BENEATH) is unavailable (Linux >= 5.6 is required)");
    // Files are re-opened through /proc/self/fd: it must be the real procfs.
    proc_fds_.reset(::open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC));
    struct statfs proc {};
    if (!proc_fds_ || ::fstatfs(proc_fds_.get(), &proc) != 0 || proc.f_type != PROC_SUPER_MAGIC)
        throw std::runtime_error("/proc is not mounted (procfs is required to open files safely)");
}

resolved path_resolver::open(std::string_view path, int flags) const {
    auto n = normalize(path);
    if (n.status != status::ok)
        return failure(n.status, std::move(n.reason));
    // Decided from the name alone, so the answer is the same whether the dotfile exists or not.
    if (n.dotfile && dotfiles_ == dotfile_policy::deny)
        return failure(status::forbidden, "forbidden: dotfiles are not served");
    open_how how{};
    how.flags = static_cast<__u64>(flags | O_CLOEXEC); // openat2 refuses O_NOCTTY with O_PATH
    how.resolve = RESOLVE_NO_MAGICLINKS;
    // The path holds no `..` any more; RESOLVE_BENEATH keeps the walk, symlinks included, in
    // the root (the real guard). Under "follow" symlinks may point anywhere, by choice.
    if (policy_ != symlink_policy::follow)
        how.resolve |= RESOLVE_BENEATH;
    if (policy_ == symlink_policy::deny)
        how.resolve |= RESOLVE_NO_SYMLINKS;
    int fd = -1;
    do {
        fd = sys_openat2(root_.get(), n.path.c_str(), how);
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
    if (fd < 0)
        return from_errno(errno);
    resolved r;
    r.fd.reset(fd);
    if (::fstat(fd, &r.st) != 0)
        return from_errno(errno);
    r.status = status::ok;
    return r;
}

/// Re-opens exactly the inode an O_PATH descriptor names, with `flags`. Going through
/// /proc/self/fd keeps it the same file even if the path is swapped meanwhile, and nothing
/// but the checked inode is ever opened for reading. The directory is held open, so only the
/// descriptor's own entry is looked up (a third of the cost of the full /proc path).
resolved path_resolver::reopen(resolved r, int flags) const {
    char name[16];
    const auto end = std::to_chars(name, name + sizeof name - 1, r.fd.get()).ptr;
    *end = '\0';
    // The magic link opens the very inode the O_PATH descriptor holds (the constructor checked
    // that /proc is procfs), so r.st still describes it.
    unique_fd readable{::openat(proc_fds_.get(), name, flags | O_CLOEXEC | O_NOCTTY)};
    if (!readable)
        return from_errno(errno);
    r.fd = std::move(readable);
    return r;
}

resolved path_resolver::find_file(std::string_view path) const {
    auto r = open(path, O_PATH);
    if (r.status == status::ok && !S_ISREG(r.st.st_mode))
        return failure(status::not_regular_file, "not a regular file");
    return r;
}

resolved path_resolver::open_readable(resolved r) const {
    return reopen(std::move(r), O_RDONLY | O_NONBLOCK);
}

resolved path_resolver::open_file(std::string_view path) const {
    auto r = find_file(path);
    if (r.status != status::ok)
        return r;
    return open_readable(std::move(r));
}

resolved path_resolver::open_directory(std::string_view path) const {
    auto r = open(path, O_PATH);
    if (r.status != status::ok)
        return r;
    if (!S_ISDIR(r.st.st_mode))
        return failure(status::not_regular_file, "not a directory");
    return reopen(std::move(r), O_RDONLY | O_DIRECTORY);
}

resolved path_resolver::stat_path(std::string_view path) const {
    return open(path, O_PATH);
}

std::optional<std::string> path_resolver::root_problem() const {
    struct stat st {};
    if (::fstat(root_.get(), &st) != 0)
        return std::string{"cannot stat the root: "} + std::strerror(errno);
    if (st.st_nlink == 0)
        return std::string{"the root directory was deleted"};
    if (::faccessat(root_.get(), ".", R_OK | X_OK, AT_EACCESS) != 0)
        return std::string{"cannot read the root: "} + std::strerror(errno);
    return std::nullopt;
}

} // namespace ferry::server
