// The ferry command line: get, ls, stat (and --help, --version).
#pragma once

namespace ferry::client {

/// Runs the command line and returns the process exit code (docs/client.md).
int run_cli(int argc, const char* const* argv);

} // namespace ferry::client
