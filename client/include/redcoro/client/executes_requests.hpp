#pragma once

#include <redcoro/client/command.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/deferred.hpp>

#include <concepts>
#include <utility>

namespace redcoro {

/// Something that executes requests: a connection, a pooled client, a cluster client, or the
/// handle over any of them. Code written against it runs unchanged on all of them:
///
/// \code
///   template <redcoro::executes_requests Redis>
///   asio::awaitable<std::int64_t> visits(Redis& redis) {
///     auto n = co_await redis.async_exec(redcoro::cmd::incr("visits"), asio::use_awaitable);
///     co_return n.value();
///   }
/// \endcode
///
/// What it asks for: an executor, async_exec of a request into a response (completing with
/// `void(error_code, std::size_t)`), and async_exec of a command, pipeline or transaction
/// that carries its reply types (completing with `void(error_code, value_type)`).
template <class T>
concept executes_requests = requires(T& t, const proto::request& req, proto::generic_response& resp,
                                     command<proto::value> cmd) {
  typename T::executor_type;
  { t.get_executor() } -> std::convertible_to<boost::asio::any_io_executor>;
  t.async_exec(req, resp, boost::asio::deferred);
  t.async_exec(std::move(cmd), boost::asio::deferred);
};

}  // namespace redcoro
