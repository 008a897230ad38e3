#include <redcoro/client/detail/meter.hpp>
#include <redcoro/client/error.hpp>
#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/error.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>

namespace redcoro {

std::string_view outcome_name(request_outcome o) noexcept {
  switch (o) {
    case request_outcome::replied:
      return "replied";
    case request_outcome::timeout:
      return "timeout";
    case request_outcome::connection_lost:
      return "connection_lost";
    case request_outcome::cancelled:
      return "cancelled";
    case request_outcome::refused:
      return "refused";
    case request_outcome::protocol_error:
      break;
  }
  return "protocol_error";
}

request_outcome outcome_of(error_code ec) noexcept {
  if (!ec) return request_outcome::replied;
  if (ec == error::timeout) return request_outcome::timeout;
  if (ec == error::connection_lost || ec == error::connect_timeout) {
    return request_outcome::connection_lost;
  }
  if (ec == boost::asio::error::operation_aborted) return request_outcome::cancelled;
  const std::error_code as_std = ec;
  if (&as_std.category() == &proto::error_category() || ec == error::unexpected_reply ||
      ec == error::out_of_sync) {
    return request_outcome::protocol_error;
  }
  return request_outcome::refused;  // closed, not connected, queue full, invalid...
}

std::uint64_t connection_metrics::server_errors_of(std::string_view code) const noexcept {
  for (const auto& [c, n] : server_errors)
    if (c == code) return n;
  return 0;
}

void connection_metrics::merge(const connection_metrics& other) {
  requests += other.requests;
  for (std::size_t i = 0; i < request_outcomes; ++i)
    completed[i] += other.completed[i];
  for (const auto& theirs : other.server_errors) {
    auto it = std::find_if(server_errors.begin(), server_errors.end(),
                           [&](const auto& e) { return e.first == theirs.first; });
    if (it == server_errors.end())
      server_errors.push_back(theirs);
    else
      it->second += theirs.second;
  }
  bytes_written += other.bytes_written;
  bytes_read += other.bytes_read;
  connects += other.connects;
  disconnects += other.disconnects;
  pushes += other.pushes;
  queued += other.queued;
  in_flight += other.in_flight;
  connected = connected || other.connected;
  latency.merge(other.latency);
  for (const auto& c : other.by_command) {
    auto it = std::find_if(by_command.begin(), by_command.end(),
                           [&](const auto& m) { return m.command == c.command; });
    if (it == by_command.end()) {
      by_command.push_back(c);
    } else {
      it->latency.merge(c.latency);
    }
  }
}

namespace detail {

meter::meter(bool on, std::shared_ptr<request_observer> observer)
    : on_(on), observer_(std::move(observer)) {}

std::size_t meter::several_label(const proto::request& r) noexcept {
  static const std::uint8_t multi_id = proto::command_id("MULTI");
  const std::uint8_t first = r.command_id(0);
  return first != 0 && first == multi_id ? multi : pipeline;
}

std::unique_ptr<command_metrics> meter::make_label(std::size_t label) {
  auto c = std::make_unique<command_metrics>();
  c->command = label_name(label);
  return c;
}

std::string_view meter::label_name(std::size_t label) noexcept {
  if (label == pipeline) return "PIPELINE";
  if (label == multi) return "MULTI";
  const proto::command_info* c = proto::command_by_id(static_cast<std::uint8_t>(label));
  return c ? c->name : "OTHER";
}

namespace {

request_event event_of(const proto::request& r, std::size_t label, std::string_view node) {
  request_event e;
  e.command = meter::label_name(label);
  e.node = node;
  e.commands = r.commands();
  return e;
}

}  // namespace

void meter::tell_started(const proto::request& r, std::string_view node) {
  observer_->request_started(event_of(r, label_of(r), node));
}

void meter::finished_otherwise(const proto::request& r, clock::time_point started_at,
                               clock::time_point at, error_code ec, std::string_view node) {
  const request_outcome o = outcome_of(ec);
  ++completed_[static_cast<std::size_t>(o)];
  const std::size_t label = label_of(r);
  if (on_ && o == request_outcome::replied) record(label, at - started_at);
  if (observer_) {
    request_event e = event_of(r, label, node);
    e.outcome = o;
    e.error = ec;
    e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(at - started_at);
    observer_->request_finished(e);
  }
}

void meter::error_reply(std::string_view message) {
  if (!on_) return;
  std::string_view code = message.substr(0, message.find(' '));
  if (code.empty()) code = "OTHER";
  for (auto& [c, n] : errors_) {
    if (c == code) {
      ++n;
      return;
    }
  }
  if (errors_.size() + 1 >= max_error_codes) {
    // The last place is the rest's.
    if (errors_.size() + 1 == max_error_codes) errors_.emplace_back("OTHER", 0);
    ++errors_.back().second;
    return;
  }
  errors_.emplace_back(std::string(code), 1);
}

connection_metrics meter::snapshot() const {
  connection_metrics m;
  m.requests = requests_;
  for (std::size_t i = 0; i < request_outcomes; ++i)
    m.completed[i] = completed_[i];
  m.server_errors = errors_;
  m.bytes_written = bytes_written_;
  m.connects = connects_;
  m.disconnects = disconnects_;
  m.pushes = pushes_;
  for (const auto& c : by_label_) {
    if (!c) continue;
    m.latency.merge(c->latency);
    m.by_command.push_back(*c);
  }
  return m;
}

}  // namespace detail
}  // namespace redcoro
