#include "ferry/protocol/messages.hpp"
#include "ferry/protocol/text.hpp"

#include <gtest/gtest.h>
#include <string>
#include <utility>
#include <vector>

namespace fp = ferry::protocol;

TEST(Escape, ControlsBackslashC1AndInvalidUtf8AreEscapedTheRestPassesThrough) {
    const std::vector<std::pair<std::string, std::string>> rows{
        {"", ""},
        {"plain name.txt", "plain name.txt"},
        {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},
        {"a\nb", "a\\nb"},
        {"a\r\n", "a\\r\\n"},
        {"tab\there", "tab\\there"},
        {std::string("nul\0x", 5), "nul\\x00x"},
        {"\x1B[31mred\x1B[0m", "\\x1b[31mred\\x1b[0m"},
        {"del\x7F", "del\\x7f"},
        {"back\\slash", "back\\\\slash"},
        {"\xC2\x9B"
         "2J",
         "\\u{9b}2J"},                                // C1 CSI
        {"\xC2\x85", "\\u{85}"},                      // C1 NEL
        {"\xC2\xA0", "\xC2\xA0"},                     // U+00A0 is not a control
        {"\xFF\xFE", "\\xff\\xfe"},                   // never valid
        {"\xC3", "\\xc3"},                            // truncated sequence
        {"\xC0\xAF", "\\xc0\\xaf"},                   // overlong '/'
        {"\xED\xA0\x80", "\\xed\\xa0\\x80"},          // a surrogate
        {"\xF4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"}, // above U+10FFFF
        {"\xE2\x82", "\\xe2\\x82"},                   // cut short
    };
    for (const auto& [in, want] : rows) {
        EXPECT_EQ(fp::escape_for_terminal(in), want) << in;
        EXPECT_TRUE(fp::is_valid_utf8(fp::escape_for_terminal(in)));
    }
}

TEST(Escape, TheLogFormAlsoEscapesDoubleQuotes) {
    EXPECT_EQ(fp::escape_for_terminal("say \"hi\""), "say \"hi\"");
    EXPECT_EQ(fp::escape_for_log("say \"hi\""), "say \\\"hi\\\"");
    // A forged access-log line stays on one line and inside its quotes.
    EXPECT_EQ(fp::escape_for_log("x\" 200\n[conn 1] forged"), "x\\\" 200\\n[conn 1] forged");
}

TEST(StrictNumbers, UnsignedTakesDigitsOnlyWithinTheLimit) {
    EXPECT_EQ(fp::parse_unsigned("0"), 0U);
    EXPECT_EQ(fp::parse_unsigned("18446744073709551615"), UINT64_MAX);
    EXPECT_EQ(fp::parse_unsigned("65535", 65535), 65535U);
    for (const char* bad :
         {"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "1.0", "18446744073709551616", "abc", "4k"})
        EXPECT_FALSE(fp::parse_unsigned(bad).has_value()) << bad;
    EXPECT_FALSE(fp::parse_unsigned("65536", 65535).has_value());
}

TEST(StrictNumbers, DecimalTakesNonNegativeFiniteNumbers) {
    EXPECT_EQ(fp::parse_decimal("10"), 10.0);
    EXPECT_EQ(fp::parse_decimal("0.25"), 0.25);
    EXPECT_EQ(fp::parse_decimal(".5"), 0.5);
    EXPECT_EQ(fp::parse_decimal("1e3"), 1000.0);
    EXPECT_EQ(fp::parse_decimal("0"), 0.0);
    for (const char* bad : {"", "-1", "+1", "-0.5", "inf", "nan", "1e999", " 1", "1 ", "0x10",
                            "1,5", "1-2", "e3", "."})
        EXPECT_FALSE(fp::parse_decimal(bad).has_value()) << bad;
}
