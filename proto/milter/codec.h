// The Sendmail milter protocol, version 6, as a codec that does no I/O: used
// by the policy daemons' milter front end (filter side) and by an MTA's
// milter client (MTA side).
//
// Wire format (libmilter's mfdef.h, engine.c and comm.c are the reference;
// Postfix's src/milter/milter8.c is the other MTA side):
//   uint32 length (network byte order, counting the command byte) | command byte | data
// Strings in the data are NUL-terminated; integers are 32-bit big-endian,
// except the 16-bit port of SMFIC_CONNECT.
//
// Security: every packet is hostile. PacketReader enforces the data-size
// limit from the length field alone, before storing anything, so a peer can
// make us hold at most max_data bytes per connection; decoders check every
// string for its terminating NUL and every fixed-size field for its length,
// and never read past the packet.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace proto::milter {

// mfdef.h: SMFI_PROT_VERSION.
constexpr std::uint32_t kProtocolVersion = 6;
// mfdef.h: MILTER_CHUNK_SIZE, the largest body chunk an MTA sends, and
// MILTER_MAX_DATA_SIZE, libmilter's default limit on a packet's data (the
// length field minus the command byte). SMFIP_MDS_256K / SMFIP_MDS_1M raise it.
constexpr std::size_t kChunkSize = 65535;
constexpr std::size_t kMaxDataDefault = 64 * 1024 - 1;
constexpr std::size_t kMaxData256K = 256 * 1024 - 1;
constexpr std::size_t kMaxData1M = 1024 * 1024 - 1;

// Actions a filter may take at end of message (mfapi.h SMFIF_*), offered by
// the MTA and requested by the filter in SMFIC_OPTNEG.
namespace action {
constexpr std::uint32_t add_headers = 0x001;     // SMFIF_ADDHDRS (add and insert)
constexpr std::uint32_t change_body = 0x002;     // SMFIF_CHGBODY
constexpr std::uint32_t add_rcpt = 0x004;        // SMFIF_ADDRCPT
constexpr std::uint32_t delete_rcpt = 0x008;     // SMFIF_DELRCPT
constexpr std::uint32_t change_headers = 0x010;  // SMFIF_CHGHDRS
constexpr std::uint32_t quarantine = 0x020;      // SMFIF_QUARANTINE
constexpr std::uint32_t change_from = 0x040;     // SMFIF_CHGFROM
constexpr std::uint32_t add_rcpt_par = 0x080;    // SMFIF_ADDRCPT_PAR
constexpr std::uint32_t set_symlist = 0x100;     // SMFIF_SETSYMLIST
constexpr std::uint32_t all_v6 = 0x1ff;
}  // namespace action

// Protocol steps (mfdef.h SMFIP_*): what the MTA may leave out, and which
// commands get no reply.
namespace step {
constexpr std::uint32_t no_connect = 0x00000001;
constexpr std::uint32_t no_helo = 0x00000002;
constexpr std::uint32_t no_mail = 0x00000004;
constexpr std::uint32_t no_rcpt = 0x00000008;
constexpr std::uint32_t no_body = 0x00000010;
constexpr std::uint32_t no_headers = 0x00000020;
constexpr std::uint32_t no_eoh = 0x00000040;
constexpr std::uint32_t no_reply_header = 0x00000080;  // SMFIP_NR_HDR (SMFIP_NOHREPL)
constexpr std::uint32_t no_unknown = 0x00000100;
constexpr std::uint32_t no_data = 0x00000200;
constexpr std::uint32_t skip = 0x00000400;      // MTA understands SMFIR_SKIP
constexpr std::uint32_t rcpt_rej = 0x00000800;  // MTA also sends rejected RCPTs
constexpr std::uint32_t no_reply_connect = 0x00001000;
constexpr std::uint32_t no_reply_helo = 0x00002000;
constexpr std::uint32_t no_reply_mail = 0x00004000;
constexpr std::uint32_t no_reply_rcpt = 0x00008000;
constexpr std::uint32_t no_reply_data = 0x00010000;
constexpr std::uint32_t no_reply_unknown = 0x00020000;
constexpr std::uint32_t no_reply_eoh = 0x00040000;
constexpr std::uint32_t no_reply_body = 0x00080000;
constexpr std::uint32_t header_leading_space = 0x00100000;  // SMFIP_HDR_LEADSPC
constexpr std::uint32_t mds_256k = 0x10000000;
constexpr std::uint32_t mds_1m = 0x20000000;
}  // namespace step

// Stages a macro list belongs to (mfapi.h SMFIM_*), in SMFIC_OPTNEG replies.
enum class MacroStage : std::uint32_t { connect = 0, helo = 1, envfrom = 2, envrcpt = 3,
                                        data = 4, eom = 5, eoh = 6 };
constexpr std::size_t kMacroStages = 7;

// One packet as read: the command byte and its data.
struct Packet {
    char code = 0;
    std::string data;
};

enum class ReadStatus { need_more, done, error };

// Splits a byte stream into packets. Limit: max_data bytes of data per packet
// (comm.c mi_rd_cmd refuses a length beyond it before reading, and a length
// of 0, which has no command byte).
class PacketReader {
public:
    explicit PacketReader(std::size_t max_data = kMaxDataDefault) : max_data_(max_data) {}

    struct Result {
        ReadStatus status;
        std::size_t consumed;  // bytes used; on done, the rest starts the next packet
    };

    // On done, packet() holds the packet until next(); on error, error() says
    // why and the reader stays in error until reset().
    Result feed(std::string_view bytes);
    const Packet& packet() const { return packet_; }
    Packet take() { return std::move(packet_); }
    // Start the next packet (keeps memory).
    void next();
    void reset() { next(); failed_ = false; error_.clear(); }
    void set_max_data(std::size_t max_data) { max_data_ = max_data; }
    std::size_t max_data() const { return max_data_; }
    const std::string& error() const { return error_; }
    // A packet has started but is not complete.
    bool in_progress() const { return header_len_ > 0; }

private:
    std::size_t max_data_;
    std::array<unsigned char, 5> header_{};  // length + command byte
    std::size_t header_len_ = 0;
    std::size_t data_len_ = 0;
    Packet packet_;
    bool done_ = false;
    bool failed_ = false;
    std::string error_;
};

// ---- Messages -------------------------------------------------------------

// SMFIC_OPTNEG both ways. From the MTA: what it offers. From the filter:
// what it wants (a subset), and the macros it asks for at each stage (the
// list that smfi_setsymlist() sets; engine.c sends them after the three
// words as: uint32 stage, space-separated names, NUL).
struct OptionNegotiation {
    std::uint32_t version = kProtocolVersion;
    std::uint32_t actions = 0;
    std::uint32_t steps = 0;
    std::array<std::optional<std::string>, kMacroStages> macros;
    bool operator==(const OptionNegotiation&) const = default;
};

// SMFIC_MACRO: the macros the MTA defines before the command `for_command`
// (a command byte: 'C', 'H', 'M', 'R', 'T', 'E', 'N', ...). Names as sent,
// e.g. "i", "{client_addr}".
struct Macros {
    char for_command = 0;
    std::vector<std::pair<std::string, std::string>> values;
    bool operator==(const Macros&) const = default;
};

// SMFIC_CONNECT. family: '4', '6', 'L' (unix socket), 'U' (unknown: no
// port and no address follow).
struct Connect {
    std::string hostname;
    char family = 'U';
    std::uint16_t port = 0;
    std::string address;
    bool operator==(const Connect&) const = default;
};

struct Helo {
    std::string name;
    bool operator==(const Helo&) const = default;
};

// SMFIC_MAIL and SMFIC_RCPT: the address as the client gave it (usually in
// <>) and its ESMTP parameters, one per string.
struct Mail {
    std::string address;
    std::vector<std::string> esmtp;
    bool operator==(const Mail&) const = default;
};
struct Rcpt {
    std::string address;
    std::vector<std::string> esmtp;
    bool operator==(const Rcpt&) const = default;
};

struct Header {
    std::string name;
    std::string value;
    bool operator==(const Header&) const = default;
};
struct EndOfHeaders {
    bool operator==(const EndOfHeaders&) const = default;
};
struct BodyChunk {
    std::string bytes;
    bool operator==(const BodyChunk&) const = default;
};
// SMFIC_BODYEOB may carry a last body chunk (engine.c st_bodyend).
struct EndOfMessage {
    std::string bytes;
    bool operator==(const EndOfMessage&) const = default;
};
struct Abort {
    bool operator==(const Abort&) const = default;
};
struct Quit {
    bool operator==(const Quit&) const = default;
};
// SMFIC_QUIT_NC: this connection ends, the MTA will reuse it for a new one.
struct QuitNewConnection {
    bool operator==(const QuitNewConnection&) const = default;
};
struct Data {
    bool operator==(const Data&) const = default;
};
// SMFIC_UNKNOWN: an SMTP command the MTA does not know, as sent.
struct Unknown {
    std::string line;
    bool operator==(const Unknown&) const = default;
};

using Command = std::variant<OptionNegotiation, Macros, Connect, Helo, Mail, Rcpt, Header,
                             EndOfHeaders, BodyChunk, EndOfMessage, Abort, Quit,
                             QuitNewConnection, Data, Unknown>;

// Replies from the filter. The ones without data:
struct Accept { bool operator==(const Accept&) const = default; };
struct Continue { bool operator==(const Continue&) const = default; };
struct Discard { bool operator==(const Discard&) const = default; };
struct Reject { bool operator==(const Reject&) const = default; };
struct Tempfail { bool operator==(const Tempfail&) const = default; };
struct Skip { bool operator==(const Skip&) const = default; };
struct Progress { bool operator==(const Progress&) const = default; };
struct Shutdown { bool operator==(const Shutdown&) const = default; };            // '4'
struct ConnectionFailure { bool operator==(const ConnectionFailure&) const = default; };  // 'f'

// SMFIR_REPLYCODE: "NNN[ X.Y.Z] text", the code 4xx or 5xx (checked when
// decoded; make_reply_code() builds a safe one).
struct ReplyCode {
    std::string text;
    bool operator==(const ReplyCode&) const = default;
};
struct AddHeader {
    std::string name;
    std::string value;
    bool operator==(const AddHeader&) const = default;
};
// SMFIR_INSHEADER: insert at index (0 = top). SMFIR_CHGHEADER: change the
// index-th (1-based) header of that name; an empty value deletes it.
struct InsertHeader {
    std::uint32_t index = 0;
    std::string name;
    std::string value;
    bool operator==(const InsertHeader&) const = default;
};
struct ChangeHeader {
    std::uint32_t index = 0;
    std::string name;
    std::string value;
    bool operator==(const ChangeHeader&) const = default;
};
struct ReplaceBody {
    std::string bytes;
    bool operator==(const ReplaceBody&) const = default;
};
struct AddRcpt {
    std::string address;
    bool operator==(const AddRcpt&) const = default;
};
struct AddRcptPar {
    std::string address;
    std::optional<std::string> esmtp;
    bool operator==(const AddRcptPar&) const = default;
};
struct DeleteRcpt {
    std::string address;
    bool operator==(const DeleteRcpt&) const = default;
};
struct ChangeFrom {
    std::string address;
    std::optional<std::string> esmtp;
    bool operator==(const ChangeFrom&) const = default;
};
struct Quarantine {
    std::string reason;
    bool operator==(const Quarantine&) const = default;
};
// SMFIR_SETSYMLIST as a packet of its own: uint32 stage, names, NUL.
// (libmilter carries these lists inside its OPTNEG reply instead.)
struct SetSymbolList {
    MacroStage stage = MacroStage::connect;
    std::string names;
    bool operator==(const SetSymbolList&) const = default;
};

using Reply = std::variant<OptionNegotiation, Accept, Continue, Discard, Reject, Tempfail,
                           ReplyCode, Skip, Progress, Shutdown, ConnectionFailure, AddHeader,
                           InsertHeader, ChangeHeader, ReplaceBody, AddRcpt, AddRcptPar, DeleteRcpt,
                           ChangeFrom, Quarantine, SetSymbolList>;

template <typename T>
struct Decoded {
    std::optional<T> value;
    std::string error;  // set when value is empty
};

// Decode a packet read from an MTA (filter side) or from a filter (MTA side).
Decoded<Command> decode_command(const Packet& packet);
Decoded<Reply> decode_reply(const Packet& packet);

// Whole packets, length prefix included. Strings must not contain NUL (a
// NUL would end them early on the wire); encoders do not check.
std::string encode(const Command& command);
std::string encode(const Reply& reply);
// The command byte of a message.
char code_of(const Command& command);
char code_of(const Reply& reply);
// The command table (mfdef.h, engine.c): for each MTA command, the step
// with which a filter declines it (SMFIP_NO*), the step with which it
// declines to answer it (SMFIP_NR_*), and whether it is answered at all.
struct CommandInfo {
    char code;
    std::string_view name;
    std::uint32_t skip_step;      // the MTA does not send it (0: always sent)
    std::uint32_t no_reply_step;  // the filter does not answer it (0: always answered)
    bool answered;                // false: macros, abort, quit, quit_nc
};
// nullptr for an unknown code.
const CommandInfo* command_info(char code);
// Does the filter answer this command under the negotiated steps?
bool expects_reply(char code, std::uint32_t steps);
// Does the MTA send it under the negotiated steps?
bool is_sent(char code, std::uint32_t steps);

// "SMFIC_RCPT", "SMFIR_REPLYCODE", ..., for logs; "unknown" otherwise.
std::string_view command_name(char code);
std::string_view reply_name(char code);

// The data size limit the negotiated steps allow (SMFIP_MDS_*).
std::size_t max_data_for(std::uint32_t steps);

// MTA side: is the filter's OPTNEG reply compatible with what was offered?
// As Postfix's milter8.c: a version above the offered one, or an action
// that was not offered, is an error (returned, "" if none). Steps the MTA
// did not offer are ignored: `steps_in_force` is what both sides agreed on.
struct NegotiationCheck {
    std::string error;
    std::uint32_t steps_in_force = 0;
    std::uint32_t actions = 0;
};
NegotiationCheck check_negotiation(const OptionNegotiation& offer, const OptionNegotiation& reply);

}  // namespace proto::milter
