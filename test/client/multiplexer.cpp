#include <redcoro/client/detail/backoff.hpp>
#include <redcoro/client/detail/key_prefix.hpp>
#include <redcoro/client/detail/multiplexer.hpp>
#include <redcoro/client/error.hpp>
#include <redcoro/proto/parser.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using steady = redcoro::detail::clock;
using redcoro::detail::exec_entry;
using redcoro::detail::multiplexer;
namespace proto = redcoro::proto;

namespace {

// A request with its response and a record of how it completed.
struct pending {
  struct entry_type : exec_entry {
    explicit entry_type(pending& p)
        : exec_entry(p.req, proto::any_adapter(p.adapter), &done), owner(&p) {}
    static void done(exec_entry& e, boost::system::error_code ec) {
      pending* self = static_cast<entry_type&>(e).owner;
      self->completed = true;
      self->ec = ec;
    }
    pending* owner;
  };

  explicit pending(proto::request r) : req(std::move(r)) {}
  pending(const pending&) = delete;

  proto::request req;
  proto::generic_response resp;
  proto::response_adapter<proto::generic_response> adapter{resp};
  entry_type entry{*this};
  bool completed = false;
  std::error_code ec;
};

proto::request cmd(std::string_view name, std::string_view arg = {}) {
  proto::request r;
  if (arg.empty())
    r.push(name);
  else
    r.push(name, arg);
  return r;
}

// Feeds server bytes through a parser into the multiplexer, completing entries.
struct wire {
  multiplexer& mux;
  proto::parser parser;
  std::error_code feed(std::string_view bytes) {
    std::size_t pos = 0;
    std::error_code ec;
    auto sink = [&](const proto::node& n) { mux.on_node(n); };
    while (parser.consume_message(bytes, pos, sink, ec)) {
      if (exec_entry* e = mux.on_message_done(0, ec)) e->complete(*e, {});
      if (ec) return ec;
    }
    return ec;
  }
};

}  // namespace

TEST_CASE("requests are written together and replies matched in order", "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  pending a(cmd("GET", "a")), b(cmd("GET", "b"));
  REQUIRE_FALSE(mux.add(a.entry));
  REQUIRE_FALSE(mux.add(b.entry));
  REQUIRE(mux.has_writable());
  CHECK(mux.prepare_write() == std::string(a.req.payload()) + std::string(b.req.payload()));
  CHECK_FALSE(mux.has_writable());
  CHECK(mux.stats().in_flight == 2);

  wire w{mux, {}};
  REQUIRE_FALSE(w.feed("$1\r\n1\r\n"));
  CHECK(a.completed);
  CHECK_FALSE(b.completed);
  REQUIRE_FALSE(w.feed("-ERR no\r\n"));
  CHECK(b.completed);
  CHECK_FALSE(b.ec);  // a server error is data
  REQUIRE(b.resp.size() == 1);
  CHECK(b.resp[0].error().message == "ERR no");
  CHECK(a.resp[0]->text == "1");
  CHECK(mux.idle());
}

TEST_CASE("only priority requests are written before the connection is ready", "[multiplexer]") {
  multiplexer mux;
  pending user(cmd("GET", "k")), hello(cmd("HELLO", "3"));
  hello.entry.priority = true;
  REQUIRE_FALSE(mux.add(user.entry));
  CHECK_FALSE(mux.has_writable());
  REQUIRE_FALSE(mux.add(hello.entry));
  CHECK(mux.prepare_write() == hello.req.payload());
  mux.set_ready(true);
  CHECK(mux.prepare_write() == user.req.payload());
}

TEST_CASE("pushes bypass the reply queue", "[multiplexer]") {
  struct sink final : redcoro::detail::push_sink {
    std::size_t nodes = 0, messages = 0;
    void on_push_node(const proto::node&) override { ++nodes; }
    void on_push_done() override { ++messages; }
  } pushes;
  multiplexer mux;
  mux.set_ready(true);
  mux.set_push_sink(&pushes);
  pending a(cmd("PING"));
  REQUIRE_FALSE(mux.add(a.entry));
  mux.prepare_write();
  wire w{mux, {}};
  REQUIRE_FALSE(w.feed(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n+PONG\r\n"));
  CHECK(pushes.messages == 1);
  CHECK(pushes.nodes == 4);
  CHECK(a.completed);
  CHECK(a.resp[0]->text == "PONG");
}

TEST_CASE("RESP2 pub/sub arrays go to the push sink, other arrays to their request",
          "[multiplexer]") {
  struct sink final : redcoro::detail::push_sink {
    std::vector<std::string> first;  // the first element of each push
    std::size_t index = 0;
    void on_push_node(const proto::node& n) override {
      if (n.depth == 1 && index++ == 0) first.emplace_back(n.value);
      if (n.depth == 0) index = 0;
    }
    void on_push_done() override {}
  } pushes;
  multiplexer mux;
  mux.set_ready(true);
  mux.set_push_sink(&pushes);
  mux.set_resp2_pushes(true);
  pending ping(cmd("PING"));
  REQUIRE_FALSE(mux.add(ping.entry));
  mux.prepare_write();
  wire w{mux, {}};
  // A message and a confirmation arrive before the PING's ["pong", ""]: they are not its reply.
  REQUIRE_FALSE(
      w.feed("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
             "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
             "*2\r\n$4\r\npong\r\n$0\r\n\r\n"));
  CHECK(pushes.first == std::vector<std::string>{"message", "subscribe"});
  REQUIRE(ping.completed);
  CHECK(ping.resp[0]->size() == 2);
  CHECK((*ping.resp[0])[0].text == "pong");
}

TEST_CASE("a request given up after writing leaves its replies to be dropped", "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  pending a(cmd("BLPOP", "q")), b(cmd("GET", "k"));
  REQUIRE_FALSE(mux.add(a.entry));
  mux.prepare_write();
  REQUIRE(mux.remove(a.entry));  // cancelled or timed out after it was written
  REQUIRE_FALSE(mux.add(b.entry));
  mux.prepare_write();
  wire w{mux, {}};
  REQUIRE_FALSE(w.feed("*2\r\n$1\r\nq\r\n$1\r\nv\r\n$5\r\nvalue\r\n"));
  CHECK_FALSE(a.completed);  // completed by whoever removed it, not by the reply
  CHECK(b.completed);
  CHECK(b.resp[0]->text == "value");
}

TEST_CASE("a request removed before writing is never sent", "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  pending a(cmd("GET", "a")), b(cmd("GET", "b"));
  REQUIRE_FALSE(mux.add(a.entry));
  REQUIRE_FALSE(mux.add(b.entry));
  REQUIRE(mux.remove(a.entry));
  CHECK(mux.prepare_write() == b.req.payload());
  CHECK_FALSE(mux.remove(a.entry));
}

TEST_CASE("connection loss fails written requests unless they may be retried", "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  pending once(cmd("INCR", "n")), again(cmd("GET", "k")), later(cmd("GET", "l"));
  again.req.get_config().retry_if_unanswered = true;
  REQUIRE_FALSE(mux.add(once.entry));
  REQUIRE_FALSE(mux.add(again.entry));
  mux.prepare_write();
  REQUIRE_FALSE(mux.add(later.entry));  // not written yet
  std::vector<exec_entry*> failed;
  mux.on_connection_lost(failed);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0] == &once.entry);
  // The retried request goes out first on the next connection, then the waiting one.
  CHECK(mux.prepare_write() == std::string(again.req.payload()) + std::string(later.req.payload()));
}

TEST_CASE("the queue bound refuses requests past it", "[multiplexer]") {
  multiplexer mux(2);
  mux.set_ready(true);
  pending a(cmd("GET", "a")), b(cmd("GET", "b")), c(cmd("GET", "c"));
  REQUIRE_FALSE(mux.add(a.entry));
  REQUIRE_FALSE(mux.add(b.entry));
  CHECK(mux.add(c.entry) == redcoro::error::queue_full);
  mux.prepare_write();  // in flight still counts
  CHECK(mux.add(c.entry) == redcoro::error::queue_full);
}

TEST_CASE("a response with fewer slots than replies is refused", "[multiplexer]") {
  multiplexer mux;
  proto::request req;
  req.push("GET", "a");
  req.push("GET", "b");
  proto::response<std::string> one;
  proto::response_adapter<decltype(one)> adapter(one);
  exec_entry e(req, proto::any_adapter(adapter), [](exec_entry&, boost::system::error_code) {});
  CHECK(mux.add(e) == redcoro::error::response_too_short);
}

TEST_CASE("deadlines expire waiting and written requests", "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  pending a(cmd("GET", "a")), b(cmd("GET", "b")), c(cmd("GET", "c"));
  const auto now = steady::now();
  a.entry.deadline = now - std::chrono::seconds(1);
  b.entry.deadline = now + std::chrono::seconds(5);
  c.entry.deadline = now;
  REQUIRE_FALSE(mux.add(a.entry));
  mux.prepare_write();  // a is written
  REQUIRE_FALSE(mux.add(b.entry));
  REQUIRE_FALSE(mux.add(c.entry));
  std::vector<exec_entry*> expired;
  CHECK(mux.expire(now, expired) == b.entry.deadline);
  CHECK(expired.size() == 2);
  // a's reply still arrives and is dropped; b gets its own.
  mux.prepare_write();
  wire w{mux, {}};
  REQUIRE_FALSE(w.feed("$1\r\nA\r\n$1\r\nB\r\n"));
  CHECK(b.completed);
  CHECK(b.resp[0]->text == "B");
}

TEST_CASE("a reply nobody asked for is an error", "[multiplexer]") {
  multiplexer mux;
  wire w{mux, {}};
  CHECK(w.feed("+OK\r\n") == redcoro::error::unexpected_reply);
}

TEST_CASE("an (un)subscribe completes with its confirmations (also sent to the push sink)",
          "[multiplexer]") {
  struct sink final : redcoro::detail::push_sink {
    int messages = 0;
    void on_push_node(const proto::node&) override {}
    void on_push_done() override { ++messages; }
  } pushes;
  multiplexer mux;
  mux.set_ready(true);
  mux.set_push_sink(&pushes);
  proto::request two;
  two.push("SUBSCRIBE", "a", "b");
  pending s(std::move(two)), get(cmd("GET", "k"));
  REQUIRE_FALSE(mux.add(s.entry));
  REQUIRE_FALSE(mux.add(get.entry));
  mux.prepare_write();
  std::vector<exec_entry*> done;
  mux.commit_write(done);
  CHECK(done.empty());
  wire w{mux, {}};
  // A message, and another kind of confirmation, are not this command's.
  REQUIRE_FALSE(
      w.feed(">3\r\n$7\r\nmessage\r\n$1\r\nz\r\n$1\r\np\r\n"
             ">3\r\n$12\r\nsunsubscribe\r\n$1\r\nz\r\n:0\r\n"
             ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"));
  CHECK_FALSE(s.completed);
  REQUIRE_FALSE(w.feed(">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"));
  CHECK(s.completed);
  CHECK(s.resp.empty());  // no reply of its own
  CHECK(pushes.messages == 4);
  REQUIRE_FALSE(w.feed("$1\r\nv\r\n"));
  REQUIRE(get.completed);
  CHECK(get.resp.at(0).value().text == "v");
}

TEST_CASE("a refused (un)subscribe gets its error reply and the next request its own",
          "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  proto::request handshake;  // as the connection's handshake carries re-subscriptions
  handshake.push("PING");
  handshake.push("SSUBSCRIBE", "c");
  handshake.push("SUBSCRIBE", "d");
  pending h(std::move(handshake)), get(cmd("GET", "k"));
  REQUIRE_FALSE(mux.add(h.entry));
  REQUIRE_FALSE(mux.add(get.entry));
  mux.prepare_write();
  wire w{mux, {}};
  REQUIRE_FALSE(w.feed("+PONG\r\n-MOVED 7365 127.0.0.1:7001\r\n"));
  CHECK_FALSE(h.completed);
  REQUIRE_FALSE(w.feed(">3\r\n$9\r\nsubscribe\r\n$1\r\nd\r\n:1\r\n"));
  REQUIRE(h.completed);
  REQUIRE(h.resp.size() == 2);
  CHECK(h.resp[0].has_value());
  REQUIRE(h.resp[1].has_error());
  CHECK(h.resp[1].error().message == "MOVED 7365 127.0.0.1:7001");
  REQUIRE_FALSE(w.feed("$1\r\nv\r\n"));
  REQUIRE(get.completed);
  CHECK(get.resp.at(0).value().text == "v");
}

TEST_CASE("unsubscribing from everything completes with its first confirmation", "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  pending u(cmd("UNSUBSCRIBE")), get(cmd("GET", "k"));
  REQUIRE_FALSE(mux.add(u.entry));
  REQUIRE_FALSE(mux.add(get.entry));
  mux.prepare_write();
  wire w{mux, {}};
  REQUIRE_FALSE(w.feed(">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n"));
  CHECK(u.completed);
  REQUIRE_FALSE(w.feed(">3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n$1\r\nv\r\n"));
  REQUIRE(get.completed);
  CHECK(get.resp.at(0).value().text == "v");
}

TEST_CASE("backoff grows, stays within bounds, and gives up when told", "[backoff]") {
  redcoro::reconnect_policy p;
  p.min_delay = std::chrono::milliseconds(100);
  p.max_delay = std::chrono::milliseconds(1000);
  p.jitter = 0.5;
  p.max_attempts = 6;
  redcoro::detail::backoff b(p);
  std::vector<long> delays;
  while (auto d = b.next())
    delays.push_back(d->count());
  REQUIRE(delays.size() == 5);
  for (std::size_t i = 0; i < delays.size(); ++i) {
    const long full = std::min(1000L, 100L << i);
    CHECK(delays[i] <= full);
    CHECK(delays[i] >= full / 2);
  }
  b.reset();
  CHECK(b.next()->count() <= 100);
}

TEST_CASE("a reply whose type cannot answer its command is out of sync", "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  pending get(cmd("GET", "k")), next(cmd("GET", "l"));
  REQUIRE_FALSE(mux.add(get.entry));
  REQUIRE_FALSE(mux.add(next.entry));
  mux.prepare_write();
  wire w{mux, {}};
  CHECK(w.feed("+PONG\r\n") == redcoro::error::out_of_sync);
  CHECK((get.resp.empty() || get.resp[0]->text != "PONG"));  // it reached no adapter
  CHECK_FALSE(get.completed);
}

TEST_CASE("replies inside MULTI are +QUEUED and not checked", "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  // MULTI alone, then a GET in a request of its own: the GET is answered +QUEUED.
  pending multi(cmd("MULTI")), get(cmd("GET", "k")), exec(cmd("EXEC")), after(cmd("GET", "k"));
  for (auto* p : {&multi, &get, &exec, &after})
    REQUIRE_FALSE(mux.add(p->entry));
  mux.prepare_write();
  wire w{mux, {}};
  REQUIRE_FALSE(w.feed("+OK\r\n+QUEUED\r\n*1\r\n$1\r\nv\r\n"));
  CHECK(get.completed);
  CHECK(exec.completed);
  // After EXEC, checked again.
  CHECK(w.feed("+QUEUED\r\n") == redcoro::error::out_of_sync);
}

TEST_CASE("a written blocking pop given up is unblocked, and what it took goes back",
          "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  proto::request blpop;
  blpop.push("BLPOP", "q", 5);
  pending pop(std::move(blpop)), get(cmd("GET", "k"));
  REQUIRE_FALSE(mux.add(pop.entry));
  const auto written = steady::now();
  mux.prepare_write(written);
  REQUIRE(mux.head());
  CHECK(mux.head()->written_at == written);
  CHECK(mux.head()->block_ms == 5000);
  CHECK_FALSE(mux.take_unblock());
  REQUIRE(mux.remove(pop.entry));  // timed out or cancelled
  CHECK(mux.take_unblock());
  CHECK_FALSE(mux.take_unblock());  // once
  REQUIRE_FALSE(mux.add(get.entry));
  mux.prepare_write();
  wire w{mux, {}};
  // The element arrived before the unblock: the late reply is kept and given back.
  REQUIRE_FALSE(w.feed("*2\r\n$1\r\nq\r\n$2\r\ne7\r\n$1\r\nv\r\n"));
  REQUIRE(mux.hand_backs().size() == 1);
  proto::request expected;
  expected.push("LPUSH", "q", "e7");
  CHECK(mux.hand_backs()[0].payload() == expected.payload());
  CHECK(get.resp[0]->text == "v");
}

TEST_CASE("a blocking pop unblocked empty-handed gives nothing back", "[multiplexer]") {
  multiplexer mux;
  mux.set_ready(true);
  proto::request blpop;
  blpop.push("BLPOP", "q", 0);
  pending pop(std::move(blpop));
  REQUIRE_FALSE(mux.add(pop.entry));
  mux.prepare_write();
  CHECK(mux.head()->block_ms == 0);  // blocks without a limit
  REQUIRE(mux.remove(pop.entry));
  CHECK(mux.take_unblock());
  wire w{mux, {}};
  REQUIRE_FALSE(w.feed("_\r\n"));  // CLIENT UNBLOCK: nil
  CHECK(mux.hand_backs().empty());
  CHECK(mux.idle());
}

namespace {

// A prefixer loaded from a Redis 6 style COMMAND reply: [name, arity, flags, first, last, step].
redcoro::detail::key_prefixer loaded_prefixer(std::string prefix) {
  using proto::type;
  using proto::value;
  const auto num = [](int n) { return value(type::number, std::to_string(n)); };
  const auto entry = [&](std::string name, int first, int last, int step) {
    std::vector<value> e;
    e.emplace_back(type::blob_string, std::move(name));
    e.push_back(num(-2));
    e.emplace_back(type::array, std::vector<value>{});
    e.push_back(num(first));
    e.push_back(num(last));
    e.push_back(num(step));
    e.emplace_back(type::array, std::vector<value>{});
    return value(type::array, std::move(e));
  };
  std::vector<value> entries;
  entries.push_back(entry("get", 1, 1, 1));
  entries.push_back(entry("scan", 0, 0, 0));
  entries.push_back(entry("echo", 0, 0, 0));
  entries.push_back(entry("blpop", 1, -2, 1));
  redcoro::detail::key_prefixer p(std::move(prefix));
  REQUIRE_FALSE(p.load(value(type::array, std::move(entries))));
  return p;
}

}  // namespace

TEST_CASE("key names in replies and keyspace notifications lose the prefix, once",
          "[multiplexer][key_prefix]") {
  const bool strip = GENERATE(true, false);
  CAPTURE(strip);
  const auto prefixer = loaded_prefixer("app:");
  struct sink final : redcoro::detail::push_sink {
    std::vector<std::string> seen;  // depth-1 strings of each push
    void on_push_node(const proto::node& n) override {
      if (n.depth == 1) seen.emplace_back(n.value);
    }
    void on_push_done() override {}
  } pushes;
  multiplexer mux;
  mux.set_ready(true);
  mux.set_key_prefixer(&prefixer, strip);
  mux.set_push_sink(&pushes);
  proto::request r;
  r.push("GET", "k");
  r.push("SCAN", 0);
  r.push("ECHO", "app:x");
  r.push("BLPOP", "l", 0);
  pending a(std::move(r));
  REQUIRE_FALSE(mux.add(a.entry));
  const std::string written(mux.prepare_write());
  CHECK(written.find("$5\r\napp:k\r\n") != std::string::npos);
  CHECK(written.find("$5\r\napp:l\r\n") != std::string::npos);
  wire w{mux, {}};
  REQUIRE_FALSE(
      w.feed("$1\r\nv\r\n"
             "*2\r\n$1\r\n0\r\n*3\r\n$5\r\napp:a\r\n$5\r\nother\r\n$9\r\napp:app:b\r\n"
             ">3\r\n$7\r\nmessage\r\n$20\r\n__keyspace@0__:app:k\r\n$3\r\nset\r\n"
             "$5\r\napp:x\r\n"
             ">4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$18\r\n__keyevent@0__:set\r\n$5\r\napp:k\r\n"
             "*2\r\n$5\r\napp:l\r\n$1\r\nz\r\n"));
  REQUIRE(a.completed);
  REQUIRE(a.resp.size() == 4);
  const std::string p = strip ? "" : "app:";
  CHECK(a.resp[0]->text == "v");
  const auto& keys = (*a.resp[1])[1];
  REQUIRE(keys.size() == 3);
  CHECK(keys[0].text == p + "a");
  CHECK(keys[1].text == "other");          // not under the prefix: as it is
  CHECK(keys[2].text == p + "app:b");      // stripped once
  CHECK((*a.resp[1])[0].text == "0");      // the cursor is no key
  CHECK(a.resp[2]->text == "app:x");       // ECHO names no key
  CHECK((*a.resp[3])[0].text == p + "l");  // BLPOP's key
  CHECK((*a.resp[3])[1].text == "z");      // and its value, untouched
  REQUIRE(pushes.seen.size() == 7);
  CHECK(pushes.seen[1] == "__keyspace@0__:" + p + "k");
  CHECK(pushes.seen[2] == "set");
  CHECK(pushes.seen[5] == "__keyevent@0__:set");
  CHECK(pushes.seen[6] == p + "k");
}
