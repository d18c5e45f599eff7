// output_dir: the directory `ferry get` writes into, opened once. Every name ferry creates or
// writes there (OUT, OUT.part, OUT.part.state and its temporary) is opened relative to the
// directory's descriptor with O_NOFOLLOW, so a symlink, a hard link or another user's file
// planted at one of those names is refused instead of written through (the wget CVE-2004-2014
// class): nothing outside the directory is ever touched.
#pragma once

#include "ferry/client/exit_code.hpp"
#include "ferry/transport/unique_fd.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <utility>

namespace ferry::client {

/// A local failure: its exit code (local_io, exists or busy) and one line naming the file.
struct local_error {
    exit_code code = exit_code::ok;
    std::string message;
    explicit operator bool() const noexcept { return !message.empty(); }
};

/// "<what> <p>: <strerror(err)>", exit code local_io.
local_error local(const std::string& what, const std::filesystem::path& p, int err);

using transport::unique_fd;

/// A file this process is downloading into, known by device and inode, for as long as the
/// claim lives. POSIX record locks do not exclude their own process, so two downloads of one
/// command that reach one file under two names (`A.bin` and `a.bin` on a case-insensitive file
/// system) meet here instead. Move-only; thread-safe.
class inode_claim {
public:
    inode_claim() noexcept = default;
    inode_claim(inode_claim&& o) noexcept;
    inode_claim& operator=(inode_claim&& o) noexcept;
    ~inode_claim();
    /// Claims the file `st` describes; false if this process claims it already.
    bool take(const struct stat& st);
    /// True if this process claims the file `st` describes. Checked before a second descriptor
    /// is opened on it: closing that one would release the first one's POSIX lock.
    static bool claimed(const struct stat& st);

private:
    void release() noexcept;
    std::optional<std::pair<dev_t, ino_t>> key_;
};

/// The directory holding an output file. Not thread-safe to move; its descriptor may be used
/// from several threads (each call is one system call on it).
class output_dir {
public:
    /// Opens the directory of `file` (its parent; "." for a bare name). Its own path may contain
    /// symlinks: the user chose it. Fails with local_io if it cannot be opened.
    static local_error open(const std::filesystem::path& file, output_dir& out);

    /// `name` as the user knows it, for messages: the directory joined with it.
    std::filesystem::path shown(const std::string& name) const;

    /// lstat of `name`; nullopt if nothing is there. `error` says why not, for other errors.
    std::optional<struct stat> status(const std::string& name, local_error& error) const;

    /// Opens `name` read-write (`create`: creating it exclusively if absent, `created` says
    /// whether it did). An existing file must be one ferry created (see ours()); anything else
    /// (a symlink, a hard link, a directory, a fifo, another user's file) is refused with exit
    /// code `exists` and a line naming it. An empty descriptor with the error otherwise.
    unique_fd open_ours(const std::string& name, int flags, bool create, bool& created,
                        local_error& error) const;

    /// Writes `text` to `name` atomically: `name`.tmp is created exclusively (a stale one,
    /// whatever it is, is unlinked first: unlinking a symlink does not follow it), fsynced and
    /// renamed over `name`, and the directory is fsynced.
    local_error write_atomically(const std::string& name, const std::string& text) const;

    /// Renames `from` to `to`; unless `replace`, never over an existing `to` (RENAME_NOREPLACE,
    /// or link + unlink where the filesystem lacks it). False with errno set on failure.
    bool rename(const std::string& from, const std::string& to, bool replace) const;

    /// Removes `name` if it is there (a symlink is removed, not followed); errors are ignored.
    void remove(const std::string& name) const;

    /// fsync of the directory, so a rename in it survives a crash; best effort.
    void sync() const;

    /// Holds an exclusive lock on the open file `fd` (`name` here) until `fd` is closed, and
    /// checks that `fd` is still the file named `name` (a holder may have renamed or removed it
    /// before letting go). A POSIX record lock, so the holder's PID can be reported: "`output`
    /// is being downloaded by another ferry (pid N, ...)", exit code busy. `stale` is set when
    /// `fd` is no longer `name`: the caller opens it again. Every descriptor this process has on
    /// the file shares the lock and closing any of them releases it, so the caller keeps one
    /// (the single-link check of open_ours() means no other name in the process reaches it).
    /// `claim` then holds the file for this process too (see inode_claim).
    local_error lock(int fd, const std::string& name, const std::string& output, bool& stale,
                     inode_claim& claim) const;

    /// True if `name` is still the open file `fd` (not renamed, removed or replaced since).
    bool names(const std::string& name, int fd) const;

private:
    unique_fd fd_;
    std::filesystem::path path_; ///< as given: "" for the current directory
};

/// What ferry creates: a regular file, one link, owned by this user. A description of `st`
/// otherwise ("a symbolic link", "a hard link (2 names)", ...), for the refusal.
std::optional<std::string> not_ours(const struct stat& st);

} // namespace ferry::client
