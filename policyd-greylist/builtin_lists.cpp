// The whitelists compiled into policyd-greylist, selected with the entry
// "builtin" in whitelist_clients / whitelist_recipients (the default).
//
// Client list: large senders that retry from a pool of addresses, often in
// other networks than the first attempt, so a network-keyed triplet would be
// greylisted again on every retry and mail delayed for hours. The pool-aware
// client key already handles most of them (same registrable domain); this list
// covers the retry paths that do not share one, and delivers their mail
// without the first delay. Each entry matches the forward-confirmed client
// name (Postfix's client_name) and its subdomains; a client with no verified
// name never matches a name entry, so a spammer cannot claim one.
#include "whitelist.h"

namespace greylist {

std::string_view builtin_client_whitelist() {
    return R"(# Mailbox providers
google.com            # Gmail and Google Workspace (mail-*.google.com)
outbound.protection.outlook.com   # Microsoft 365 and Outlook.com
hotmail.com
yahoo.com             # Yahoo and AOL (*.mail.*.yahoo.com)
yahoodns.net
aol.com
icloud.com            # Apple iCloud Mail
apple.com
gmx.net               # GMX, WEB.DE (1&1 pools)
web.de
mail.ru
yandex.net
yandex.ru
zoho.com
zoho.eu
protonmail.ch
proton.ch
messagingengine.com   # Fastmail
# Bulk and transactional senders
amazonses.com         # Amazon SES (*.smtp-out.amazonses.com)
sendgrid.net
mcsv.net              # Mailchimp
rsgsv.net
mcdlv.net
mandrillapp.com
mailgun.net
mailgun.org
sparkpostmail.com
mtasv.net             # Postmark
exacttarget.com       # Salesforce Marketing Cloud
# Mail security gateways (their outbound pools relay their customers' mail)
mimecast.com
pphosted.com          # Proofpoint
messagelabs.com       # Broadcom Email Security.cloud
# Large platforms sending notifications from pools
facebookmail.com
facebook.com
linkedin.com
twitter.com
ebay.com
paypal.com
)";
}

std::string_view builtin_recipient_whitelist() {
    // RFC 2142 and RFC 5321 section 4.5.1: these must accept mail without delay.
    return "postmaster@\nabuse@\n";
}

}  // namespace greylist
