// A 250 means the message is on disk: mta-core is killed with SIGKILL at
// random moments while a client streams 2000 messages (and while the queue
// manager delivers them); after each restart, every message that got a 250
// is delivered (a duplicate is allowed for a delivery in flight at the kill).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "../delivery/helpers.h"
#include "mta_instance.h"

using namespace testsupport;
using dtest::LineClient;
using mtatest::MtaInstance;

TEST(MtaDurability, EveryAcceptedMessageSurvivesKill9) {
    constexpr int kMessages = 2000;
    MtaInstance mta;
    std::set<int> accepted;
    std::atomic<bool> streaming{true};
    std::atomic<int> kills{0};
    // The killer: SIGKILL at random moments (a fault schedule, not a
    // synchronisation), so kills land mid-DATA, between the fsync and the
    // 250, and while the queue manager delivers.
    std::thread killer([&] {
        std::mt19937 rng(12345);
        std::uniform_int_distribution<int> gap_ms(20, 400);
        while (streaming) {
            std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms(rng)));
            if (!streaming) break;
            mta.kill9();
            ++kills;
            mta.start();
        }
    });
    std::unique_ptr<LineClient> c;
    auto connect = [&] {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (true) {
            try {
                c = std::make_unique<LineClient>("127.0.0.1", mta.port());
                if (c->reply().substr(0, 4) != "220 ") throw std::runtime_error("no greeting");
                c->send("EHLO client.example\r\n");
                c->reply();
                return;
            } catch (const std::exception&) {
                c.reset();
                if (std::chrono::steady_clock::now() > deadline) throw;
                std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the server is restarting
            }
        }
    };
    for (int i = 0; i < kMessages; ++i) {
        try {
            if (!c) connect();
            c->send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
            if (c->reply().substr(0, 3) != "250" || c->reply().substr(0, 3) != "250" ||
                c->reply().substr(0, 3) != "354")
                throw std::runtime_error("envelope refused");
            c->send("Subject: message " + std::to_string(i) + "\r\n\r\nbody " + std::to_string(i) + "\r\n.\r\n");
            if (c->reply().substr(0, 24) == "250 2.0.0 Ok: queued as ") accepted.insert(i);
        } catch (const std::exception&) {
            c.reset();  // the server went away mid-message: no 250, no promise
        }
    }
    streaming = false;
    killer.join();
    ASSERT_GT(kills, 3);
    ASSERT_GT(accepted.size(), static_cast<std::size_t>(kMessages / 2));
    // Every accepted message arrives (the queue is delivered after the last restart).
    std::set<int> delivered;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    std::size_t files = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        auto list = mta.mail_files("alice");
        if (list.size() != files) {
            files = list.size();
            delivered.clear();
            for (const auto& f : list) {
                std::string m = read_file(f);
                auto pos = m.find("Subject: message ");
                if (pos != std::string::npos) delivered.insert(std::stoi(m.substr(pos + 17)));
            }
        }
        bool all = std::includes(delivered.begin(), delivered.end(), accepted.begin(), accepted.end());
        if (all) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling a directory, bounded
    }
    std::vector<int> lost;
    std::set_difference(accepted.begin(), accepted.end(), delivered.begin(), delivered.end(),
                        std::back_inserter(lost));
    EXPECT_TRUE(lost.empty()) << lost.size() << " accepted messages lost, first " << (lost.empty() ? -1 : lost[0])
                              << "; kills " << kills.load();
    std::printf("messages accepted %zu of %d, kills %d, files delivered %zu (duplicates %zu)\n", accepted.size(),
                kMessages, kills.load(), files, files - delivered.size());
}

namespace {

// One message on a new connection; true when it got its 250.
bool send_one(const MtaInstance& mta, int i) {
    try {
        LineClient c("127.0.0.1", mta.port());
        if (c.reply().substr(0, 4) != "220 ") return false;
        c.send("EHLO client.example\r\n");
        c.reply();
        c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
        if (c.reply().substr(0, 3) != "250" || c.reply().substr(0, 3) != "250" || c.reply().substr(0, 3) != "354")
            return false;
        c.send("Subject: message " + std::to_string(i) + "\r\n\r\nbody\r\n.\r\n");
        return c.reply().substr(0, 24) == "250 2.0.0 Ok: queued as ";
    } catch (const std::exception&) {
        return false;  // the server died mid-message: no 250, no promise
    }
}

// Subjects of the delivered copies, once `want` distinct ones are there.
std::multiset<int> delivered(const MtaInstance& mta, std::size_t want) {
    std::multiset<int> out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    do {
        out.clear();
        for (const auto& f : mta.mail_files("alice")) {
            std::string m = read_file(f);
            auto pos = m.find("Subject: message ");
            if (pos != std::string::npos) out.insert(std::stoi(m.substr(pos + 17)));
        }
        if (std::set<int>(out.begin(), out.end()).size() >= want) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a directory, bounded
    } while (std::chrono::steady_clock::now() < deadline);
    return out;
}

struct ChosenKill {
    std::set<int> accepted;
    int in_flight = -1;  // the message being sent when mta-core died
    std::multiset<int> after_restart;
};

// mta-core killed (SIGKILL) right after the chosen system call, while
// messages go in one by one; then started again, without the fault.
ChosenKill kill_at(const std::string& spec, std::size_t expect_distinct_extra) {
    mtatest::Options o;
    o.wrapper = {"/usr/bin/env", std::string("LD_PRELOAD=") + MTA_CRASH_AT_LIB, "MTA_CRASH_AT=" + spec};
    MtaInstance mta(o);
    ChosenKill k;
    for (int i = 1; i <= 20; ++i) {
        if (send_one(mta, i)) {
            k.accepted.insert(i);
        } else {
            k.in_flight = i;
            break;
        }
        if (mta.wait_exit(std::chrono::milliseconds(0)) != -1) break;  // died after this one's 250
    }
    EXPECT_NE(mta.wait_exit(std::chrono::seconds(10)), -1) << spec << ": the fault never fired";
    mta.set_wrapper({});
    mta.start();
    k.after_restart = delivered(mta, k.accepted.size() + expect_distinct_extra);
    return k;
}

bool all_delivered(const ChosenKill& k) {
    return std::all_of(k.accepted.begin(), k.accepted.end(), [&](int i) { return k.after_restart.count(i) > 0; });
}

}  // namespace

// Before the queue file has a name (written and fsynced, then killed): the
// client got no 250 and nothing of it survives; everything before arrives.
TEST(MtaDurability, KilledAfterTheFileFsyncBeforeItsNameNothingHalfRemains) {
    auto k = kill_at("file-fsync:3", 0);
    EXPECT_EQ(k.accepted, (std::set<int>{1, 2}));
    EXPECT_EQ(k.in_flight, 3);
    EXPECT_TRUE(all_delivered(k));
    EXPECT_EQ(k.after_restart.count(3), 0u) << "a message without a 250 and without a name";
}

// After the directory fsync, before the 250: the message is durable, so it
// is delivered after the restart although its client never heard 250.
TEST(MtaDurability, KilledAfterTheDirectoryFsyncBeforeThe250TheMessageIsDelivered) {
    auto k = kill_at("dir-fsync:3", 1);
    ASSERT_GE(k.in_flight, 1);
    EXPECT_TRUE(all_delivered(k));
    EXPECT_EQ(k.after_restart.count(k.in_flight), 1u) << "durable before its 250";
}

// During delivery (delivered, killed before the queue file is removed): the
// message is delivered again after the restart, at least once, never lost.
TEST(MtaDurability, KilledDuringDeliveryTheMessageIsDeliveredAgainNotLost) {
    auto k = kill_at("unlink:1", 0);
    EXPECT_TRUE(all_delivered(k));
    ASSERT_FALSE(k.after_restart.empty());
    EXPECT_GE(k.after_restart.count(1), 1u);
    EXPECT_LE(k.after_restart.count(1), 2u) << "one duplicate at most: the delivery in flight";
}
