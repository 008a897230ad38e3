#include <redcoro/client/error.hpp>
#include <redcoro/cluster/detail/redirect_machine.hpp>

#include <algorithm>

namespace redcoro::detail {

std::chrono::milliseconds redirect_machine::backoff() noexcept {
  // Doubles with each wait of the same part, from retry_delay up to max_delay.
  const auto d = policy_.retry_delay * (std::int64_t{1} << std::min<std::size_t>(waits_, 6));
  ++waits_;
  return std::min(d, policy_.max_delay);
}

std::string redirect_machine::too_many_redirects(std::size_t max_redirects, std::string_view last) {
  return "TOOMANYREDIRECTS " + std::to_string(max_redirects) +
         " redirections, the last: " + std::string(last);
}

redirect_machine::action redirect_machine::next(const attempt_result& r) {
  using kind = attempt_result::kind;
  action a;
  switch (r.what) {
    case kind::replied:
      a.what = step::done;
      return a;

    case kind::failed:
      a.what = step::fail;
      a.ec = r.ec;
      return a;

    case kind::lost:
      // Written, and the connection went: a write may have run, and the caller must hear
      // so; a read can go to another node. Either way the topology may have changed.
      a.refresh = true;
      if (!readonly_ || ++attempts_ > policy_.max_redirects) {
        a.what = step::fail;
        a.ec = r.ec;
        return a;
      }
      a.retry = true;
      a.delay = backoff();
      return a;

    case kind::not_sent:
    case kind::no_node:
      // Nothing ran: it goes to whoever serves the slot once the topology says, bounded by
      // the request's deadline rather than the redirect budget.
      a.refresh = true;
      a.retry = true;
      a.delay = backoff();
      return a;

    case kind::redirected:
      break;
  }
  const redirect& re = *r.r;
  if (++attempts_ > policy_.max_redirects) {
    a.what = step::give_up;
    return a;
  }
  switch (re.what) {
    case redirect::kind::moved:
      a.to = re.target;
      a.moved = re;
      a.refresh = true;
      break;
    case redirect::kind::ask:
      a.to = re.target;
      a.asking = true;
      break;
    case redirect::kind::try_again:
      a.retry = true;
      a.delay = backoff();
      break;
    case redirect::kind::cluster_down:
      a.retry = true;
      a.refresh = true;
      a.delay = backoff();
      break;
  }
  return a;
}

reply_merge::reply_merge(std::size_t total, const std::vector<command_plan>& commands)
    : commands_(&commands), finals_(total) {
  for (std::size_t i = 0; i < total && i < commands.size(); ++i)
    if (!commands[i].error.empty())
      finals_[i] = proto::value(proto::type::simple_error, commands[i].error);
}

void reply_merge::add(const part& p, std::vector<proto::value> replies) {
  const command_plan& how = (*commands_)[p.first];
  if (how.how == merge::none) {
    for (std::size_t k = 0; k < replies.size() && p.first + k < finals_.size(); ++k)
      finals_[p.first + k] = std::move(replies[k]);
    return;
  }
  if (replies.empty()) return;
  merge_into(finals_[p.first], how, p, std::move(replies[0]));
}

void reply_merge::merge_into(std::optional<proto::value>& out, const command_plan& how,
                             const part& p, proto::value v) {
  if (out && out->is_error()) return;
  if (v.is_error()) {
    out = std::move(v);
    return;
  }
  switch (how.how) {
    case merge::none:
    case merge::first:
      if (!out) out = std::move(v);
      break;
    case merge::sum: {
      const std::int64_t add = v.to_integer().value_or(0);
      const std::int64_t have = out ? out->to_integer().value_or(0) : 0;
      out = proto::value(proto::type::number, std::to_string(have + add));
      break;
    }
    case merge::concat:
      if (!out) out = proto::value(proto::type::array, std::vector<proto::value>{});
      for (auto& e : v.elements)
        out->elements.push_back(std::move(e));
      break;
    case merge::by_key:
      if (!out) out = proto::value(proto::type::array, std::vector<proto::value>(how.keys));
      for (std::size_t k = 0; k < p.keys.size() && k < v.elements.size(); ++k)
        if (p.keys[k] < out->elements.size()) out->elements[p.keys[k]] = std::move(v.elements[k]);
      break;
  }
}

}  // namespace redcoro::detail
