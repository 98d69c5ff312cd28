// The MTA side of the codec against libmilter, the reference filter side: a
// small filter linked with libmilter (tests/milter/peer) negotiates, asks
// for macros, refuses and tempfails, and makes one modification of every
// kind at end of message; the test speaks to it through MilterConn, the
// codec's MTA side, and checks every reply decodes to what libmilter meant.
#include <gtest/gtest.h>

#include "milter/codec.h"
#include "support/milter_conn.h"
#include "support/process.h"

namespace {

using testsupport::MilterConn;
namespace m = proto::milter;

template <typename T>
bool is(const std::optional<m::Reply>& r) {
    return r && std::holds_alternative<T>(*r);
}

TEST(MilterLibmilterPeer, TheMtaSideReadsEveryReplyLibmilterSends) {
    testsupport::TempDir dir;
    int port = testsupport::free_port();
    testsupport::Process filter({TEST_LIBMILTER_FILTER, "inet:" + std::to_string(port) + "@127.0.0.1"},
                                dir.file("filter.log"));
    testsupport::wait_for_tcp("127.0.0.1", port);

    MilterConn c("127.0.0.1", port);
    auto o = c.negotiate();
    ASSERT_TRUE(o);
    EXPECT_EQ(o->version, 6u);
    EXPECT_EQ(o->actions, m::action::all_v6);  // everything the filter registered
    EXPECT_TRUE(o->actions & m::action::quarantine);
    EXPECT_TRUE(o->actions & m::action::set_symlist);
    // smfi_setsymlist(SMFIM_ENVFROM, ...) travels in the OPTNEG reply.
    ASSERT_TRUE(o->macros[static_cast<int>(m::MacroStage::envfrom)]);
    EXPECT_EQ(*o->macros[static_cast<int>(m::MacroStage::envfrom)], "{auth_authen} i");

    c.send(m::Command(m::Macros{'C', {{"j", "mx.example.org"}}}));
    EXPECT_TRUE(c.ask(m::Command(m::Connect{"client.example.net", '4', 40000, "192.0.2.1"})).is_continue());
    EXPECT_TRUE(c.ask(m::Command(m::Helo{"client.example.net"})).is_continue());
    c.send(m::Command(m::Macros{'M', {{"{auth_authen}", "alice"}, {"i", "4QID"}}}));
    EXPECT_TRUE(c.ask(m::Command(m::Mail{"<alice@example.net>", {"SIZE=100"}})).is_continue());
    EXPECT_TRUE(c.ask(m::Command(m::Rcpt{"<bob@example.org>", {}})).is_continue());
    EXPECT_TRUE(is<m::Tempfail>(c.ask(m::Command(m::Rcpt{"<tempfail@example.org>", {}})).final));
    EXPECT_TRUE(c.ask(m::Command(m::Data{})).is_continue());
    EXPECT_TRUE(c.ask(m::Command(m::Header{"Subject", "hello"})).is_continue());
    EXPECT_TRUE(c.ask(m::Command(m::EndOfHeaders{})).is_continue());
    EXPECT_TRUE(c.ask(m::Command(m::BodyChunk{"body\r\n"})).is_continue());
    auto eom = c.ask(m::Command(m::EndOfMessage{}));
    ASSERT_TRUE(eom.final);
    EXPECT_TRUE(is<m::Accept>(eom.final));
    std::vector<m::Reply> expected = {
        m::Reply(m::AddHeader{"X-Added", "alice"}),
        m::Reply(m::InsertHeader{0, "X-Inserted", "top"}),
        m::Reply(m::ChangeHeader{1, "Subject", "changed"}),
        m::Reply(m::AddRcpt{"<added@example.org>"}),
        m::Reply(m::AddRcptPar{"<param@example.org>", "NOTIFY=NEVER"}),
        m::Reply(m::DeleteRcpt{"<bob@example.org>"}),
        m::Reply(m::ChangeFrom{"<new-sender@example.org>", "SIZE=10"}),
        m::Reply(m::ReplaceBody{"new body\r\n"}),
        m::Reply(m::Quarantine{"held for review"}),
    };
    EXPECT_EQ(eom.edits, expected);

    // smfi_setreply's text arrives as SMFIR_REPLYCODE, '%' still doubled.
    c.send(m::Command(m::Abort{}));
    auto refused = c.ask(m::Command(m::Mail{"<reject@example.net>", {}}));
    EXPECT_EQ(refused.text(), "550 5.7.1 sender refused, 100%% sure");
    c.send(m::Command(m::Abort{}));
    c.send(m::Command(m::Quit{}));
    EXPECT_TRUE(c.closed_by_peer());

    // A tempfail at connect, in a second session.
    MilterConn d("127.0.0.1", port);
    ASSERT_TRUE(d.negotiate());
    EXPECT_TRUE(is<m::Tempfail>(d.ask(m::Command(m::Connect{"refused.example", '4', 1, "192.0.2.2"})).final));
}

}  // namespace
