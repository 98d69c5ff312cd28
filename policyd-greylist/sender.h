// Sender normalisation for greylisting triplets, as postgrey does it, plus
// SRS: one sender that varies per message (BATV tags, SRS rewriting, VERP
// numbers, +extensions) must map to one triplet, or every message from a
// mailing list would be greylisted anew.
//
// Security: input is the raw `sender` attribute (hostile, up to one policy
// line, 8 KiB). Pure function, no allocation beyond the result, output never
// longer than the input; fuzzed (fuzz/greylist_sender_fuzz.cpp).
#pragma once

#include <string>
#include <string_view>

namespace greylist {

// Lower case; SRS0/SRS1 reduced to the original sender when it can be read;
// BATV "prvs=TAG=user" (and the msprvs1= and btv1== variants) reduced to
// "user"; "+extension" removed from the local part; every run of digits
// that forms a whole word of the local part (Perl's \b\d+\b) replaced by '#'.
// The null sender stays empty.
std::string normalise_sender(std::string_view sender);

// ASCII lower case copy (addresses and host names; no locale).
std::string lower_ascii(std::string_view text);

}  // namespace greylist
