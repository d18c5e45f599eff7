// strict_option: command-line and config-file numbers for Boost.ProgramOptions, read strictly.
// ProgramOptions converts with lexical_cast, which reads "-1" as 4294967295 for an unsigned;
// these read with ferry::protocol::parse_unsigned / parse_decimal instead, for both binaries.
#pragma once

#include "ferry/protocol/text.hpp"

#include <boost/any.hpp>
#include <boost/program_options/errors.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <limits>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

namespace ferry::transport {

/// An option's value of type T (an unsigned integer or double), parsed strictly: digits only
/// for integers, within T's range; a non-negative finite decimal for double.
template <class T>
struct strict {
    static_assert(std::is_unsigned_v<T> || std::is_same_v<T, double>);
    T value{};
};

template <class T>
std::ostream& operator<<(std::ostream& os, const strict<T>& s) {
    return os << s.value;
}

/// Found by ProgramOptions through ADL. A bad number is `invalid_option_value`, whose message
/// names the option and the text ("the argument ('-1') for option '--retries' is invalid").
template <class T>
void validate(boost::any& v, const std::vector<std::string>& values, strict<T>*, int) {
    boost::program_options::validators::check_first_occurrence(v);
    const std::string& text = boost::program_options::validators::get_single_string(values);
    std::optional<T> parsed;
    if constexpr (std::is_same_v<T, double>) {
        parsed = protocol::parse_decimal(text);
    } else if (auto n = protocol::parse_unsigned(text, std::numeric_limits<T>::max())) {
        parsed = static_cast<T>(*n);
    }
    if (!parsed)
        throw boost::program_options::invalid_option_value(text);
    v = boost::any(strict<T>{*parsed});
}

/// A strict value stored into `*target` when the options are notified, with `*target` as the
/// default shown in --help. Use like po::value<T>(target)->default_value(*target).
template <class T>
boost::program_options::typed_value<strict<T>>* strict_value(T* target) {
    return boost::program_options::value<strict<T>>()
        ->default_value(strict<T>{*target})
        ->notifier([target](const strict<T>& s) { *target = s.value; });
}

/// A strict value without a default (read it with vm["name"].as<strict<T>>().value).
template <class T>
boost::program_options::typed_value<strict<T>>* strict_value() {
    return boost::program_options::value<strict<T>>();
}

} // namespace ferry::transport
