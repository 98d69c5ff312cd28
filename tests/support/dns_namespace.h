// A network namespace with a test DNS server in it (tests/spf/suite_dns.py,
// an authoritative server answering a zones file on 127.0.0.1:53), whose
// /etc/netns/NAME/resolv.conf points there. A daemon run under
// `ip netns exec NAME` resolves from the test data; it listens on a unix
// socket in a temp dir, which the test reaches from outside. Needs root.
#pragma once

#include <string>

#include "support/process.h"

namespace testsupport {

class DnsNamespace {
public:
    DnsNamespace(const std::string& zones_file, const std::string& dns_server_script);
    ~DnsNamespace();
    DnsNamespace(const DnsNamespace&) = delete;
    DnsNamespace& operator=(const DnsNamespace&) = delete;
    const std::string& name() const { return name_; }

private:
    std::string name_;
    bool created_ = false;
    TempDir dir_;
    Process dns_;
};

}  // namespace testsupport
