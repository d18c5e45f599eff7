// ferryd: the Ferry file-serving daemon. Serving lands with the server issue; this entry point
// already answers --help and --version so scripts and packaging can rely on it.
#include "ferry/protocol/frame.hpp"

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

namespace po = boost::program_options;

int main(int argc, char** argv) {
    po::options_description options{"ferryd options"};
    options.add_options()("help,h", "show this help")("version", "show the version");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, options), vm);
    } catch (const po::error& e) {
        std::cerr << "ferryd: " << e.what() << " (try --help)\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << "Usage: ferryd [options]\n" << options;
        return 0;
    }
    if (vm.count("version")) {
        std::cout << "ferryd " FERRY_VERSION " (protocol " << int{ferry::protocol::version}
                  << ")\n";
        return 0;
    }
    std::cerr << "ferryd: serving is not implemented in this build yet\n";
    return 1;
}
