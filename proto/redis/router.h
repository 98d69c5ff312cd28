// The Cluster and Sentinel side of redis::Client (cluster_client.cpp), seen
// by client.cpp only.
#pragma once

#include "redis/client.h"

namespace proto::redis {

std::shared_ptr<Client::Router> make_router(boost::asio::any_io_executor ex, Url url,
                                            ClientOptions options);
void router_start(Client::Router& router);
void router_stop(Client::Router& router);
void router_set_metrics(Client::Router& router, metrics_sink::Sink* sink);
bool router_connected(const Client::Router& router);
ClientStats router_stats(const Client::Router& router);
boost::asio::awaitable<Result> router_command(std::shared_ptr<Client::Router> router,
                                              std::vector<std::string> args,
                                              std::chrono::milliseconds deadline);
boost::asio::awaitable<Result> router_eval(std::shared_ptr<Client::Router> router,
                                           const Script& script, std::vector<std::string> keys,
                                           std::vector<std::string> args,
                                           std::chrono::milliseconds deadline);

}  // namespace proto::redis
