// The cluster's retry policy and reply merging without sockets: scripted outcomes in, actions
// out.
#include <redcoro/client/error.hpp>
#include <redcoro/cluster/detail/redirect_machine.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using redcoro::node_address;
using redcoro::detail::attempt_result;
using redcoro::detail::redirect;
using redcoro::detail::redirect_machine;
using step = redirect_machine::step;
namespace proto = redcoro::proto;

namespace {

attempt_result redirected(std::string_view message) {
  attempt_result r;
  r.what = attempt_result::kind::redirected;
  r.r = redirect::parse(message, {"10.0.0.9", 7009});
  REQUIRE(r.r);
  return r;
}

attempt_result of(attempt_result::kind k, redcoro::error e = {}) {
  attempt_result r;
  r.what = k;
  if (e != redcoro::error{}) r.ec = e;
  return r;
}

const redirect_machine::policy policy{3, 20ms, 1000ms};

}  // namespace

TEST_CASE("each outcome and the action it leads to", "[redirect_machine]") {
  struct row {
    const char* what;
    attempt_result in;
    bool readonly;
    step expect;
    bool asking, refresh, moved, retry, has_target, waits;
  };
  const std::vector<row> table = {
      {"replies", of(attempt_result::kind::replied), false, step::done, false, false, false, false,
       false, false},
      {"MOVED", redirected("MOVED 42 10.0.0.2:7002"), false, step::send, false, true, true, false,
       true, false},
      {"ASK", redirected("ASK 42 10.0.0.3:7003"), false, step::send, true, false, false, false,
       true, false},
      {"TRYAGAIN", redirected("TRYAGAIN Multiple keys request during rehashing of slot"), false,
       step::send, false, false, false, true, false, true},
      {"CLUSTERDOWN", redirected("CLUSTERDOWN The cluster is down"), false, step::send, false, true,
       false, true, false, true},
      {"never written", of(attempt_result::kind::not_sent), false, step::send, false, true, false,
       true, false, true},
      {"no node for the slot", of(attempt_result::kind::no_node), false, step::send, false, true,
       false, true, false, true},
      {"a write lost with its connection",
       of(attempt_result::kind::lost, redcoro::error::connection_lost), false, step::fail, false,
       true, false, false, false, false},
      {"a read lost with its connection",
       of(attempt_result::kind::lost, redcoro::error::connection_lost), true, step::send, false,
       true, false, true, false, true},
      {"a timeout", of(attempt_result::kind::failed, redcoro::error::timeout), false, step::fail,
       false, false, false, false, false, false},
  };
  for (const row& r : table) {
    INFO(r.what);
    redirect_machine m(policy, r.readonly);
    const auto a = m.next(r.in);
    CHECK(a.what == r.expect);
    CHECK(a.asking == r.asking);
    CHECK(a.refresh == r.refresh);
    CHECK(a.moved.has_value() == r.moved);
    CHECK(a.retry == r.retry);
    CHECK(a.to.has_value() == r.has_target);
    CHECK((a.delay.count() > 0) == r.waits);
    if (a.what == step::fail) CHECK(a.ec == r.in.ec);
  }
}

TEST_CASE("redirects are followed to where they point", "[redirect_machine]") {
  redirect_machine m(policy, false);
  auto a = m.next(redirected("MOVED 42 10.0.0.2:7002"));
  CHECK(*a.to == node_address{"10.0.0.2", 7002});
  CHECK(a.moved->slot == 42);
  a = m.next(redirected("ASK 42 10.0.0.3:7003"));
  CHECK(*a.to == node_address{"10.0.0.3", 7003});
  CHECK(a.asking);
  // A node that does not know its own host: the one it came from.
  a = m.next(redirected("MOVED 42 :7005"));
  CHECK(*a.to == node_address{"10.0.0.9", 7005});
}

TEST_CASE("the redirect budget runs out, then the part gives up", "[redirect_machine]") {
  redirect_machine m(policy, false);  // max_redirects 3
  for (int i = 0; i < 3; ++i)
    CHECK(m.next(redirected("TRYAGAIN busy")).what == step::send);
  CHECK(m.attempts() == 3);
  CHECK(m.next(redirected("TRYAGAIN busy")).what == step::give_up);
  CHECK(redirect_machine::too_many_redirects(3, "TRYAGAIN busy") ==
        "TOOMANYREDIRECTS 3 redirections, the last: TRYAGAIN busy");
}

TEST_CASE("waits double up to the cap, and unsent requests are bounded by time, not the budget",
          "[redirect_machine]") {
  redirect_machine m({2, 100ms, 350ms}, false);
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 5; ++i)
    waits.push_back(m.next(of(attempt_result::kind::not_sent)).delay);
  CHECK(waits == std::vector<std::chrono::milliseconds>{100ms, 200ms, 350ms, 350ms, 350ms});
  CHECK(m.attempts() == 0);
  // A read lost twice and a third time: the budget is spent.
  redirect_machine r({2, 1ms, 1ms}, true);
  CHECK(r.next(of(attempt_result::kind::lost, redcoro::error::connection_lost)).what == step::send);
  CHECK(r.next(of(attempt_result::kind::lost, redcoro::error::connection_lost)).what == step::send);
  CHECK(r.next(of(attempt_result::kind::lost, redcoro::error::connection_lost)).what == step::fail);
}

TEST_CASE("replies of split commands are merged back in the caller's order", "[reply_merge]") {
  using redcoro::detail::command_plan;
  using redcoro::detail::merge;
  using redcoro::detail::part;
  auto blob = [](std::string s) { return proto::value(proto::type::blob_string, std::move(s)); };
  auto num = [](int n) { return proto::value(proto::type::number, std::to_string(n)); };
  auto arr = [](std::vector<proto::value> e) {
    return proto::value(proto::type::array, std::move(e));
  };
  // 0: GET x (whole); 1: MGET a b c split in two; 2: DEL a b summed; 3: refused here.
  std::vector<command_plan> commands(4);
  commands[1].how = merge::by_key;
  commands[1].keys = 3;
  commands[2].how = merge::sum;
  commands[3].error = "CROSSSLOT Keys in request don't hash to the same slot";
  part get, mget1, mget2, del1, del2;
  get.first = 0;
  mget1.first = mget2.first = 1;
  mget1.keys = {0, 2};
  mget2.keys = {1};
  del1.first = del2.first = 2;

  redcoro::detail::reply_merge m(4, commands);
  m.add(mget2, {arr({blob("B")})});
  m.add(get, {blob("X")});
  m.add(del1, {num(1)});
  m.add(mget1, {arr({blob("A"), blob("C")})});
  m.add(del2, {num(1)});
  CHECK(m.reply(0)->text == "X");
  REQUIRE(m.reply(1)->size() == 3);
  CHECK((*m.reply(1))[0].text == "A");
  CHECK((*m.reply(1))[1].text == "B");
  CHECK((*m.reply(1))[2].text == "C");
  CHECK(m.reply(2)->to_integer() == 2);
  CHECK(m.reply(3)->is_error());

  // An error reply of one part wins over the others' replies.
  redcoro::detail::reply_merge e(4, commands);
  e.add(del1, {num(1)});
  e.add(del2, {proto::value(proto::type::simple_error, "WRONGTYPE no")});
  e.add(del1, {num(5)});
  CHECK(e.reply(2)->is_error());
}
