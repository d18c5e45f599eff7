// path_resolver: turns a request path into an open descriptor beneath the served root.
//
// Confinement is the kernel's job, not string handling: every path is opened with openat2(2)
// relative to an O_PATH descriptor of the root, with RESOLVE_BENEATH (the walk may not leave
// the root, through `..` or a symlink) and RESOLVE_NO_MAGICLINKS (no /proc/self/fd tricks),
// plus RESOLVE_NO_SYMLINKS under --symlinks=deny. Needs Linux >= 5.6.
#pragma once

#include "ferry/protocol/messages.hpp"
#include "ferry/protocol/status.hpp"
#include "ferry/server/config.hpp"
#include "ferry/server/unique_fd.hpp"

#include <filesystem>
#include <string>
#include <string_view>
#include <sys/stat.h>

namespace ferry::server {

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

/// Normalises a request path: refuses an absolute path (bad_request), drops empty and "."
/// components, keeps ".." for the kernel to judge (lexically resolved under
/// --symlinks=follow). Returns "." for the root. Public for the unit tests.
struct normalized_path {
    protocol::status status = protocol::status::ok;
    std::string path;
};
normalized_path normalize(std::string_view path, symlink_policy policy);

class path_resolver {
public:
    /// Opens the root. Throws std::system_error if it cannot be opened, is not a directory,
    /// or the kernel lacks openat2.
    path_resolver(const std::filesystem::path& root, symlink_policy policy);

    /// A regular file, opened read-only and non-blocking. Never opens anything else: the path
    /// is first opened O_PATH and checked with fstat, then the same inode is re-opened for
    /// reading, so FIFOs, devices and sockets are refused without being opened.
    resolved open_file(std::string_view path) const;
    /// A directory, opened for reading its entries (not_regular_file if it is not one).
    resolved open_directory(std::string_view path) const;
    /// Metadata only (an O_PATH descriptor): for STAT.
    resolved stat_path(std::string_view path) const;

    symlink_policy policy() const noexcept { return policy_; }

private:
    resolved open(std::string_view path, int flags) const;
    resolved reopen(resolved r, int flags) const;

    unique_fd root_;
    unique_fd proc_fds_; ///< /proc/self/fd, where O_PATH descriptors are re-opened
    symlink_policy policy_;
};

} // namespace ferry::server
