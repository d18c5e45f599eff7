#include "ferry/transport/strict_option.hpp"

#include <boost/program_options.hpp>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace po = boost::program_options;
using ferry::transport::strict;
using ferry::transport::strict_value;

namespace {

/// Parses `args` with --count (unsigned, default 5), --size (uint64) and --seconds (double).
struct parsed {
    unsigned count = 5;
    std::uint64_t size = 0;
    double seconds = 1.5;
};

parsed parse(std::vector<std::string> args) {
    parsed p;
    po::options_description d;
    d.add_options()("count", strict_value(&p.count),
                    "")("size", strict_value(&p.size), "")("seconds", strict_value(&p.seconds), "");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
    return p;
}

} // namespace

TEST(StrictOption, ValidNumbersAndDefaultsAreStored) {
    const auto p = parse({"--size", "18446744073709551615", "--seconds", "0.25"});
    EXPECT_EQ(p.count, 5U);
    EXPECT_EQ(p.size, UINT64_MAX);
    EXPECT_EQ(p.seconds, 0.25);
    EXPECT_EQ(parse({"--count=4294967295"}).count, 4294967295U);
}

TEST(StrictOption, NegativeOverflowingAndMalformedNumbersAreRefusedNamingTheOption) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"--count", "-1"},
                                                 {"--count", "4294967296"},
                                                 {"--size", "-1"},
                                                 {"--size", "1e3"},
                                                 {"--count", " 7"},
                                                 {"--seconds", "-1"},
                                                 {"--seconds", "nan"},
                                                 {"--seconds", "inf"},
                                                 {"--count", ""}}) {
        try {
            (void)parse(args);
            ADD_FAILURE() << args[0] << " " << args[1] << " was accepted";
        } catch (const po::invalid_option_value& e) {
            EXPECT_NE(std::string{e.what()}.find(args[0]), std::string::npos) << e.what();
        }
    }
}
