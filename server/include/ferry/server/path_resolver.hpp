// path_resolver: turns a request path into an open descriptor beneath the served root.
//
// Confinement is the kernel's job, not string handling: every path is opened with openat2(2)
// relative to an O_PATH descriptor of the root, with RESOLVE_BENEATH (the walk may not leave
// the root, through `..` or a symlink) and RESOLVE_NO_MAGICLINKS (no /proc/self/fd tricks),
// plus RESOLVE_NO_SYMLINKS under --symlinks=deny. Needs Linux >= 5.6. Before that, the request
// path is normalised lexically (normalize): the kernel never sees a `..` from the request, only
// those inside symlink targets, which RESOLVE_BENEATH judges.
#pragma once

#include "ferry/protocol/messages.hpp"
#include "ferry/protocol/status.hpp"
#include "ferry/server/config.hpp"
#include "ferry/transport/unique_fd.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>

namespace ferry::server {

using transport::unique_fd;

/// An open descriptor and its metadata, or the status that explains why there is none.
struct resolved {
    protocol::status status = protocol::status::internal_error;
    unique_fd fd;
    struct stat st {};
    std::string reason; ///< for the ERROR text when status != ok, e.g. "not found"
};

/// The identity of the file version `st` describes: device, inode, size, mtime in ns.
protocol::file_identity make_identity(const struct stat& st) noexcept;
std::int64_t mtime_ns(const struct stat& st) noexcept;
protocol::file_kind kind_of(const struct stat& st) noexcept;

/// The longest name a path segment may have (Linux NAME_MAX; also the protocol's listed names).
inline constexpr std::size_t max_segment_size = 255;
/// The longest path the kernel resolves: PATH_MAX (4,096) counts the terminating NUL, so a
/// 4,096-byte path, legal in the protocol, is one byte too long for openat2.
inline constexpr std::size_t max_resolvable_path_size = 4095;

/// A request path in the form the kernel is asked to open, or why it is refused.
struct normalized_path {
    protocol::status status = protocol::status::ok;
    std::string path;     ///< relative, no empty, `.` or `..` segment; "." for the root
    std::string reason;   ///< for the ERROR text when status != ok
    bool dotfile = false; ///< a remaining segment starts with '.' (see is_dotfile)
};

/// Normalises a request path lexically, as RFC 3986 (5.2.4) removes dot segments: refuses an
/// absolute path (bad_request), drops empty and `.` segments, and lets `..` remove the segment
/// before it; a `..` with nothing left to remove would climb above the root (forbidden). So
/// `nope/../hello.txt` is `hello.txt` whether `nope` exists or not, and `link/../x` is `x` even
/// when `link` is a symlink (URL semantics, not the kernel's). Refuses a segment longer than
/// max_segment_size (bad_request) and a result longer than max_resolvable_path_size
/// (too_large). Never touches the file system; public for the unit tests.
normalized_path normalize(std::string_view path);

/// A dotfile name: it starts with '.' (".git", ".env") and is not "." or "..".
bool is_dotfile(std::string_view name) noexcept;

class path_resolver {
public:
    /// Opens the root. Throws std::system_error if it cannot be opened, is not a directory,
    /// or the kernel lacks openat2.
    path_resolver(const std::filesystem::path& root, symlink_policy policy,
                  dotfile_policy dotfiles = dotfile_policy::deny);

    /// A regular file, opened read-only and non-blocking. Never opens anything else: the path
    /// is first opened O_PATH and checked with fstat, then the same inode is re-opened for
    /// reading, so FIFOs, devices and sockets are refused without being opened.
    resolved open_file(std::string_view path) const;
    /// A regular file, found but not opened: an O_PATH descriptor and its metadata (the same
    /// refusals as open_file). open_readable turns it into what open_file returns.
    resolved find_file(std::string_view path) const;
    /// Re-opens exactly the inode `r` (from find_file or stat_path) names, read-only and
    /// non-blocking.
    resolved open_readable(resolved r) const;
    /// A directory, opened for reading its entries (not_regular_file if it is not one).
    resolved open_directory(std::string_view path) const;
    /// Metadata only (an O_PATH descriptor): for STAT.
    resolved stat_path(std::string_view path) const;
    // All three refuse, before any file-system access, what normalize refuses and, under
    // --dotfiles=deny, any path with a dotfile segment (forbidden, whether it exists or not).

    /// Whether LIST shows a directory entry called `name` (dotfiles only under allow).
    bool lists(std::string_view name) const noexcept {
        return dotfiles_ == dotfile_policy::allow || !is_dotfile(name);
    }

    symlink_policy policy() const noexcept { return policy_; }

    /// Why the root cannot be served from now (it was deleted, or this process may no longer
    /// read it), or nothing when it can: what /readyz asks.
    std::optional<std::string> root_problem() const;

private:
    resolved open(std::string_view path, int flags) const;
    resolved reopen(resolved r, int flags) const;

    unique_fd root_;
    unique_fd proc_fds_; ///< /proc/self/fd, where O_PATH descriptors are re-opened
    symlink_policy policy_;
    dotfile_policy dotfiles_;
};

} // namespace ferry::server
