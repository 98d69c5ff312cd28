#include "dns/answers.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <climits>
#include <string_view>

#include "dns/names.h"

namespace mta::dns {

namespace {

int length_of(std::size_t size) { return size > INT_MAX ? INT_MAX : static_cast<int>(size); }

// A parser's failure: no records of the type is NODATA, anything else a bad answer.
Outcome parse_failure(int rc) { return outcome_of(rc == ARES_ENODATA ? rc : ARES_EBADRESP); }

}  // namespace

Outcome outcome_of(int ares_status) {
    switch (ares_status) {
    case ARES_SUCCESS:
        return Outcome::found;
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
    case ARES_EBADNAME:
        return Outcome::not_found;
    default:
        return Outcome::temporary;
    }
}

Outcome parse_addresses(int ares_status, const unsigned char* data, std::size_t size, bool v6,
                        std::vector<std::string>& out) {
    if (ares_status != ARES_SUCCESS) return outcome_of(ares_status);
    char text[INET6_ADDRSTRLEN];
    if (!v6) {
        ares_addrttl ttls[max_answers];
        int n = static_cast<int>(max_answers);
        int rc = ares_parse_a_reply(data, length_of(size), nullptr, ttls, &n);
        if (rc != ARES_SUCCESS) return parse_failure(rc);
        for (int i = 0; i < n; ++i)
            if (inet_ntop(AF_INET, &ttls[i].ipaddr, text, sizeof text)) out.emplace_back(text);
    } else {
        ares_addr6ttl ttls[max_answers];
        int n = static_cast<int>(max_answers);
        int rc = ares_parse_aaaa_reply(data, length_of(size), nullptr, ttls, &n);
        if (rc != ARES_SUCCESS) return parse_failure(rc);
        for (int i = 0; i < n; ++i)
            if (inet_ntop(AF_INET6, &ttls[i].ip6addr, text, sizeof text)) out.emplace_back(text);
    }
    return out.empty() ? Outcome::not_found : Outcome::found;
}

Outcome parse_mx(int ares_status, const unsigned char* data, std::size_t size, std::vector<MxRecord>& out) {
    if (ares_status != ARES_SUCCESS) return outcome_of(ares_status);
    ares_mx_reply* list = nullptr;
    int rc = ares_parse_mx_reply(data, length_of(size), &list);
    if (rc != ARES_SUCCESS) return parse_failure(rc);
    std::size_t seen = 0, null_mx = 0;
    for (auto* r = list; r && seen < max_answers; r = r->next, ++seen) {
        std::string_view host = strip_root_dot(r->host ? std::string_view(r->host) : std::string_view());
        if (host.empty()) {
            ++null_mx;
            continue;
        }
        if (valid_hostname(host)) out.push_back(MxRecord{r->priority, std::string(host)});
    }
    ares_free_data(list);
    if (out.empty() && null_mx > 0 && seen == null_mx) {
        out.push_back(MxRecord{0, ""});
        return Outcome::found;
    }
    if (out.empty()) return seen == 0 ? Outcome::not_found : Outcome::temporary;
    return Outcome::found;
}

Outcome parse_ptr(int ares_status, const unsigned char* data, std::size_t size,
                  const std::array<std::uint8_t, 16>& address, bool v6, std::vector<std::string>& out) {
    if (ares_status != ARES_SUCCESS) return outcome_of(ares_status);
    hostent* host = nullptr;
    int rc = ares_parse_ptr_reply(data, length_of(size), address.data(), v6 ? 16 : 4, v6 ? AF_INET6 : AF_INET,
                                  &host);
    if (rc != ARES_SUCCESS) return parse_failure(rc);
    std::size_t seen = 0;
    auto take = [&](const char* name) {
        ++seen;
        std::string_view n = strip_root_dot(name);
        if (out.size() < max_answers && valid_hostname(n) && std::find(out.begin(), out.end(), n) == out.end())
            out.emplace_back(n);
    };
    // c-ares puts every PTR target in h_aliases (in order) and the last in h_name.
    if (host->h_aliases)
        for (char** a = host->h_aliases; *a && seen < max_answers; ++a) take(*a);
    if (out.empty() && host->h_name) take(host->h_name);
    ares_free_hostent(host);
    return out.empty() ? Outcome::not_found : Outcome::found;
}

Outcome parse_txt(int ares_status, const unsigned char* data, std::size_t size, std::vector<std::string>& out) {
    if (ares_status != ARES_SUCCESS) return outcome_of(ares_status);
    ares_txt_ext* list = nullptr;
    int rc = ares_parse_txt_reply_ext(data, length_of(size), &list);
    if (rc != ARES_SUCCESS) return parse_failure(rc);
    std::size_t seen = 0;
    for (auto* r = list; r; r = r->next) {
        if (r->record_start) {
            if (++seen > max_answers) break;
            out.emplace_back();
        }
        if (out.empty()) continue;
        std::string& text = out.back();
        for (std::size_t i = 0; i < r->length && text.size() < max_txt; ++i) {
            unsigned char c = r->txt[i];
            text += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
        }
    }
    ares_free_data(list);
    return out.empty() ? Outcome::not_found : Outcome::found;
}

}  // namespace mta::dns
