#pragma once

// What every README fragment may take for granted (scripts/extract-snippets.py wraps the
// fragments; each page's own header, next to this one, declares the objects its snippets
// use): every public header, and the names the pages use without spelling them out.

#include <redcoro/cache/cache.hpp>
#include <redcoro/cache/codec.hpp>
#include <redcoro/cache/error.hpp>
#include <redcoro/cache/write_behind.hpp>
#include <redcoro/client/client.hpp>
#include <redcoro/client/command.hpp>
#include <redcoro/client/commands.hpp>
#include <redcoro/client/config.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/endpoint.hpp>
#include <redcoro/client/error.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/client/lease.hpp>
#include <redcoro/client/metrics.hpp>
#include <redcoro/client/script.hpp>
#include <redcoro/client/sentinel_client.hpp>
#include <redcoro/client/sentinel_config.hpp>
#include <redcoro/client/tracking_cache.hpp>
#include <redcoro/client/url.hpp>
#include <redcoro/cluster/cluster_client.hpp>
#include <redcoro/cluster/cluster_subscriber.hpp>
#include <redcoro/cluster/topology.hpp>
#include <redcoro/cluster/tracking_cache.hpp>
#include <redcoro/connect/blocking.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/connect/registry.hpp>
#include <redcoro/connect/subscriber.hpp>
#include <redcoro/connect/tracking_cache.hpp>
#include <redcoro/http/exporter.hpp>
#include <redcoro/http/format.hpp>
#include <redcoro/proto/adapter.hpp>
#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/command_table.hpp>
#include <redcoro/proto/error.hpp>
#include <redcoro/proto/key_slot.hpp>
#include <redcoro/proto/node.hpp>
#include <redcoro/proto/parser.hpp>
#include <redcoro/proto/pubsub.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>
#include <redcoro/proto/result.hpp>
#include <redcoro/proto/type.hpp>
#include <redcoro/proto/value.hpp>
#include <redcoro/pubsub/message.hpp>
#include <redcoro/pubsub/subscriber.hpp>
#include <redcoro/recipes/error.hpp>
#include <redcoro/recipes/leader.hpp>
#include <redcoro/recipes/limiter.hpp>
#include <redcoro/recipes/lock.hpp>
#include <redcoro/recipes/session.hpp>
#include <redcoro/recipes/stream_worker.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
namespace proto = redcoro::proto;
using namespace std::chrono_literals;
