#include "ferry/client/redirect.hpp"

#include <algorithm>

namespace ferry::client {

namespace {

std::string joined(const std::vector<std::string>& urls) {
    std::string out;
    for (const auto& u : urls)
        out.append(out.empty() ? "" : " -> ").append(u);
    return out;
}

} // namespace

failure redirect_chain::follow(url& u, const failure& f, bool directory) {
    if (f.detail.empty())
        return failure::invalid("a redirect (" + f.error.message + ") without a Location");
    std::string error;
    const auto to = resolve_url(u, f.detail, error, directory);
    if (!to)
        return failure::invalid(f.message() + ": " + error);
    auto chain = seen_;
    chain.push_back(to->str());
    if (std::find(seen_.begin(), seen_.end(), chain.back()) != seen_.end())
        return failure::invalid("a redirect loop: " + joined(chain));
    if (seen_.size() > max_redirects)
        return failure::invalid("more than " + std::to_string(max_redirects) +
                                " redirects: " + joined(chain));
    seen_ = std::move(chain);
    u = *to;
    return {};
}

} // namespace ferry::client
