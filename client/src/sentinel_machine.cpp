#include <redcoro/client/detail/sentinel_machine.hpp>
#include <redcoro/client/error.hpp>

#include <algorithm>
#include <charconv>

namespace redcoro::detail {
namespace {

std::optional<std::uint16_t> read_port(std::string_view text) {
  unsigned v = 0;
  const auto* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc{} || p != end || v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// A string element (blob, simple or verbatim string), or nullptr.
const std::string* text_of(const proto::value& v) {
  using proto::type;
  if (v.data_type == type::blob_string || v.data_type == type::simple_string ||
      v.data_type == type::verbatim_string)
    return &v.text;
  return nullptr;
}

std::optional<endpoint> read_endpoint(const std::string* host, const std::string* port) {
  if (!host || !port || host->empty()) return std::nullopt;
  const auto p = read_port(*port);
  if (!p) return std::nullopt;
  return endpoint{*host, *p};
}

std::vector<std::string> split_flags(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    if (comma != 0) out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

sentinel_answer failed(std::string why) {
  sentinel_answer a;
  a.detail = std::move(why);
  return a;
}

sentinel_answer unknown_name() {
  sentinel_answer a;
  a.what = sentinel_answer::kind::unknown_name;
  return a;
}

sentinel_answer address_of(endpoint e) {
  sentinel_answer a;
  a.what = sentinel_answer::kind::address;
  a.address = std::move(e);
  return a;
}

bool names_no_such_master(std::string_view message) {
  return message.find("No such master") != std::string_view::npos;
}

}  // namespace

bool sentinel_instance::has_flag(std::string_view flag) const noexcept {
  return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

bool sentinel_instance::healthy() const noexcept {
  if (has_flag("s_down") || has_flag("o_down") || has_flag("disconnected")) return false;
  return link_status.empty() || link_status == "ok";
}

sentinel_answer read_primary_address(const proto::result<proto::value>& reply) {
  if (reply.has_error()) {
    if (names_no_such_master(reply.error().message)) return unknown_name();
    return failed("error reply: " + reply.error().message);
  }
  const proto::value& v = *reply;
  if (v.is_null()) return unknown_name();
  if (v.is_aggregate() && v.size() == 2) {
    if (auto e = read_endpoint(text_of(v[0]), text_of(v[1]))) return address_of(std::move(*e));
  }
  return failed("not an address: " + v.to_display());
}

std::optional<std::vector<sentinel_instance>> read_instances(const proto::value& reply) {
  if (reply.data_type != proto::type::array && reply.data_type != proto::type::set)
    return std::nullopt;
  std::vector<sentinel_instance> out;
  out.reserve(reply.size());
  for (const proto::value& entry : reply.elements) {
    // find() reads RESP3 maps and RESP2 flat field/value arrays alike.
    const proto::value* ip = entry.find("ip");
    const proto::value* port = entry.find("port");
    auto address = read_endpoint(ip ? text_of(*ip) : nullptr, port ? text_of(*port) : nullptr);
    if (!address) continue;
    sentinel_instance i;
    i.address = std::move(*address);
    if (const proto::value* f = entry.find("flags"); f && text_of(*f))
      i.flags = split_flags(f->text);
    if (const proto::value* l = entry.find("master-link-status"); l && text_of(*l))
      i.link_status = l->text;
    out.push_back(std::move(i));
  }
  return out;
}

sentinel_answer choose_replica(const proto::result<proto::value>& reply, std::size_t turn) {
  if (reply.has_error()) {
    if (names_no_such_master(reply.error().message)) return unknown_name();
    return failed("error reply: " + reply.error().message);
  }
  if (reply->is_null()) return unknown_name();
  const auto all = read_instances(*reply);
  if (!all) return failed("not a list of replicas: " + reply->to_display());
  std::vector<const sentinel_instance*> healthy;
  for (const auto& r : *all)
    if (r.healthy()) healthy.push_back(&r);
  if (healthy.empty()) {
    sentinel_answer a;
    a.what = sentinel_answer::kind::no_replica;
    a.detail = std::to_string(all->size()) + " replicas, none healthy";
    return a;
  }
  return address_of(healthy[turn % healthy.size()]->address);
}

std::optional<switch_master> read_switch_master(const proto::value& push, std::string_view name) {
  // ["message", channel, payload] or ["pmessage", pattern, channel, payload].
  if (!push.is_aggregate() || push.size() < 3) return std::nullopt;
  const std::string* kind = text_of(push[0]);
  if (!kind) return std::nullopt;
  std::size_t at = 1;
  if (*kind == "pmessage")
    at = 2;
  else if (*kind != "message")
    return std::nullopt;
  if (push.size() != at + 2) return std::nullopt;
  const std::string* channel = text_of(push[at]);
  const std::string* payload = text_of(push[at + 1]);
  if (!channel || *channel != "+switch-master" || !payload) return std::nullopt;
  std::vector<std::string> words;
  std::string_view rest = *payload;
  while (!rest.empty()) {
    const auto space = rest.find(' ');
    if (space != 0) words.emplace_back(rest.substr(0, space));
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  if (words.size() != 5 || words[0] != name) return std::nullopt;
  auto from = read_endpoint(&words[1], &words[2]);
  auto to = read_endpoint(&words[3], &words[4]);
  if (!from || !to) return std::nullopt;
  return switch_master{std::move(*from), std::move(*to)};
}

bool is_subscribe_confirmation(const proto::value& push, std::string_view channel) {
  if (!push.is_aggregate() || push.size() != 3) return false;
  const std::string* kind = text_of(push[0]);
  const std::string* name = text_of(push[1]);
  return kind && name && *kind == "subscribe" && *name == channel;
}

sentinel_list::sentinel_list(std::vector<endpoint> initial) {
  for (auto& e : initial)
    add(e);
}

void sentinel_list::answered(const endpoint& s) {
  auto it = std::find(list_.begin(), list_.end(), s);
  if (it == list_.end()) {
    list_.insert(list_.begin(), s);
    return;
  }
  std::rotate(list_.begin(), it, it + 1);
}

bool sentinel_list::add(const endpoint& s) {
  if (std::find(list_.begin(), list_.end(), s) != list_.end()) return false;
  list_.push_back(s);
  return true;
}

void resolve_round::record(const endpoint& sentinel, const sentinel_answer& a) {
  std::string said;
  switch (a.what) {
    case sentinel_answer::kind::address:
      return;
    case sentinel_answer::kind::unknown_name:
      unknown_ = true;
      said = "does not know the name";
      break;
    case sentinel_answer::kind::no_replica:
      no_replica_ = true;
      said = "no healthy replica";
      if (!a.detail.empty()) said += " (" + a.detail + ")";
      break;
    case sentinel_answer::kind::failed:
      said = a.detail.empty() ? std::string("no answer") : a.detail;
      break;
  }
  if (!summary_.empty()) summary_ += "; ";
  summary_ += sentinel.to_string() + ": " + said;
}

std::error_code resolve_round::verdict() const {
  if (no_replica_) return error::no_healthy_replica;
  if (unknown_) return error::unknown_primary_name;
  return error::no_sentinel_reachable;
}

std::string resolve_round::summary() const {
  return summary_.empty() ? std::string("no sentinel to ask") : summary_;
}

}  // namespace redcoro::detail
