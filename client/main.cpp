// ferry: the Ferry client. All logic lives in ferry_client.
#include "ferry/client/cli.hpp"

#include <csignal>

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN); // a closed stdout or socket is an error value, not a kill
    return ferry::client::run_cli(argc, argv);
}
