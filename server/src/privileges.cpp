// server::drop_privileges: --user, for a ferryd started as root outside systemd (which starts
// it unprivileged itself). The ports, the root and the log files are opened first, as root;
// then the process becomes the user, with that user's groups, for good.
#include "ferry/server/server.hpp"

#include <cerrno>
#include <grp.h>
#include <pwd.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace ferry::server {

void server::drop_privileges() {
    if (!config_->user)
        return;
    const auto& name = *config_->user;
    if (::geteuid() != 0) {
        log_.server->warn("--user {}: ignored, ferryd was not started as root", name);
        return;
    }
    std::vector<char> buffer(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (const int err = ::getpwnam_r(name.c_str(), &pw, buffer.data(), buffer.size(), &found);
        err != 0 || found == nullptr)
        throw std::system_error(err != 0 ? err : ENOENT, std::generic_category(),
                                "--user " + name + ": no such user");
    if (pw.pw_uid == 0)
        throw std::system_error(EINVAL, std::generic_category(),
                                "--user " + name + ": that is root; name an unprivileged user");
    // Groups first (they need root), then the group, then the user: the last step gives up the
    // right to do the others.
    if (::initgroups(name.c_str(), pw.pw_gid) != 0)
        throw std::system_error(errno, std::generic_category(), "--user " + name + ": initgroups");
    if (::setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) != 0)
        throw std::system_error(errno, std::generic_category(), "--user " + name + ": setgid");
    if (::setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) != 0)
        throw std::system_error(errno, std::generic_category(), "--user " + name + ": setuid");
    if (::setuid(0) == 0) // must be impossible now
        throw std::system_error(EPERM, std::generic_category(),
                                "--user " + name + ": root could be regained");
    log_.server->info("running as user {} (uid {}, gid {})", name, pw.pw_uid, pw.pw_gid);
    // What root could open, the user may not: better to refuse now than to answer every
    // request "forbidden".
    if (auto why = resolver_.root_problem())
        throw std::system_error(EACCES, std::generic_category(),
                                "--user " + name + ": " + *why);
    if (reread_) {
        try {
            (void)reread_();
        } catch (const std::exception& e) {
            log_.server->warn("--user {}: a SIGHUP reload will fail: {}", name, e.what());
        }
    }
}

} // namespace ferry::server
