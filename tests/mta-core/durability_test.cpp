// A 250 means the message is on disk: mta-core is killed with SIGKILL at
// random moments while a client streams 2000 messages (and while the queue
// manager delivers them); after each restart, every message that got a 250
// is delivered (a duplicate is allowed for a delivery in flight at the kill).
#include <gtest/gtest.h>
#include <signal.h>

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
