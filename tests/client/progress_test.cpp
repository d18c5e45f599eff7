// Unit tests of what ferry shows: the progress line (render_line) and the ls listing_writer.
#include "ferry/client/listing.hpp"
#include "ferry/client/progress.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace ferry::test {
namespace {

namespace fc = ferry::client;
namespace fp = ferry::protocol;

/// Columns of a rendered line: code points (the lines hold ASCII and "…").
std::size_t columns(const std::string& s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
    }));
}

TEST(ProgressLine, FitsEveryWidthFrom20To300) {
    const std::string names[] = {"a", "hello.txt", std::string(500, 'n'),
                                 "\xC3\xA9t\xC3\xA9-" + std::string(100, 'x')};
    for (std::size_t width = 20; width <= 300; ++width)
        for (const auto& name : names)
            for (std::uint64_t total : {0ULL, 1ULL, 1ULL << 40, INT64_MAX + 0ULL}) {
                const auto line = fc::render_line(width, name, total / 3, total, 123456.7);
                ASSERT_LE(columns(line), width) << width << ": " << line;
                ASSERT_EQ(line.find('\n'), std::string::npos);
            }
}

TEST(ProgressLine, ShowsTheTotalAndNeverMoreThan100Percent) {
    const auto line = fc::render_line(120, "file.bin", 3 << 20, 1 << 20, 1024);
    EXPECT_NE(line.find("100%"), std::string::npos) << line;
    EXPECT_EQ(line.find("300%"), std::string::npos) << line;
    EXPECT_NE(line.find("/1.0 MiB"), std::string::npos) << line; // the total size
    const auto bar = line.substr(line.find('['), line.find(']') - line.find('['));
    EXPECT_EQ(bar.find('.'), std::string::npos) << line; // a full bar
    const auto half = fc::render_line(120, "file.bin", 512 << 10, 1 << 20, 1024);
    EXPECT_NE(half.find(" 50% 512.0 KiB/1.0 MiB"), std::string::npos) << half;
}

TEST(ProgressLine, LongNamesAreCutWithAnEllipsis) {
    const std::string name = "a-very-long-file-name-" + std::string(200, 'z') + ".iso";
    const auto line = fc::render_line(80, name, 1, 2, 1);
    EXPECT_NE(line.find("\xE2\x80\xA6"), std::string::npos) << line;
    EXPECT_EQ(line.rfind("a-very-long-file-name-", 0), 0U) << line;
    EXPECT_EQ(line.find(".iso"), std::string::npos) << line;
    // A multi-byte character is never cut in half.
    const std::string accents = [] {
        std::string s;
        for (int i = 0; i < 40; ++i)
            s += "\xC3\xA9";
        return s;
    }();
    const auto cut = fc::render_line(30, accents, 1, 2, 1);
    EXPECT_LE(columns(cut), 30U);
    EXPECT_EQ(cut.find("\xC3\xE2"), std::string::npos) << cut;
}

fp::list_entry entry(const std::string& name) {
    return {name, fp::file_kind::regular, 1, 0};
}

std::vector<std::string> names_of(const std::string& text) {
    std::vector<std::string> names;
    std::istringstream in{text};
    for (std::string line; std::getline(in, line);)
        names.push_back(line.substr(line.rfind(' ') + 1));
    return names;
}

TEST(ListingWriter, SortsWhatFitsTheBound) {
    std::ostringstream out, err;
    fc::listing_writer w{out, err, false, 5};
    std::vector<fp::list_entry> batch{entry("c"), entry("a")};
    w.add(batch);
    batch = {entry("b")};
    w.add(batch);
    EXPECT_EQ(w.held(), 3U);
    w.finish();
    EXPECT_EQ(names_of(out.str()), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(err.str(), "");
}

TEST(ListingWriter, StreamsPastTheBoundInTheServersOrder) {
    std::ostringstream out, err;
    fc::listing_writer w{out, err, false, 3};
    std::vector<fp::list_entry> batch{entry("d"), entry("c")};
    w.add(batch);
    EXPECT_FALSE(w.streaming());
    batch = {entry("b"), entry("a")};
    w.add(batch); // 4 > 3: printed now, held no more
    EXPECT_TRUE(w.streaming());
    EXPECT_EQ(w.held(), 0U);
    EXPECT_EQ(names_of(out.str()), (std::vector<std::string>{"d", "c", "b", "a"}));
    batch = {entry("f"), entry("e")};
    w.add(batch);
    EXPECT_EQ(w.held(), 0U);
    w.finish();
    EXPECT_EQ(names_of(out.str()), (std::vector<std::string>{"d", "c", "b", "a", "f", "e"}));
    const auto said = err.str();
    EXPECT_NE(said.find("not sorted"), std::string::npos);
    EXPECT_EQ(std::count(said.begin(), said.end(), '\n'), 1); // said once
}

TEST(ListingWriter, JsonIsOneValidArrayStreamedOrNot) {
    for (std::size_t limit : {1UL, 100UL}) {
        std::ostringstream out, err;
        fc::listing_writer w{out, err, true, limit};
        std::vector<fp::list_entry> batch{entry("b\n\x1b[2J"), entry("a")};
        w.add(batch);
        w.finish();
        const auto j = nlohmann::json::parse(out.str());
        ASSERT_EQ(j.size(), 2U);
        std::set<std::string> names{j[0]["name"], j[1]["name"]};
        EXPECT_TRUE(names.count("b\n\x1b[2J")); // exact, not escaped
    }
    std::ostringstream out, err;
    fc::listing_writer empty{out, err, true};
    empty.finish();
    EXPECT_EQ(nlohmann::json::parse(out.str()), nlohmann::json::array());
}

TEST(ListingWriter, TextNamesAreEscapedOnOneLine) {
    std::ostringstream out, err;
    fc::listing_writer w{out, err, false};
    std::vector<fp::list_entry> batch{entry("evil\n\x1b[2J\r\xC2\x9B")};
    w.add(batch);
    w.finish();
    const auto text = out.str();
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\r'), std::string::npos) << text;
    EXPECT_EQ(text.find("\xC2\x9B"), std::string::npos) << text;
}

} // namespace
} // namespace ferry::test
