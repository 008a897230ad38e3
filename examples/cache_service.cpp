// A cache in front of a slow data source, with redcoro::cache. Cache-aside: get_or_load looks
// in Redis first and, on a miss, loads from the source once (however many callers missed at
// the same time) and stores the value with a TTL. A price change goes through write_through
// (the source first, then the cache); a brand's products are dropped at once by their tag.
//   cache_service [port]      (a redis-server on 127.0.0.1, port 6379 by default)
#include "example.hpp"
#include <redcoro/cache/cache.hpp>
#include <redcoro/connect/handle.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/describe.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace rc = redcoro::cache;
using example::expect;
using namespace std::chrono_literals;

struct product {
  std::string name;
  double price = 0;
  std::string brand;
};
BOOST_DESCRIBE_STRUCT(product, (), (name, price, brand))

// The slow source (a database, another service): we count how often it is asked.
std::map<std::string, product> source = {{"42", {"kettle", 19.99, "acme"}},
                                         {"43", {"toaster", 29.99, "acme"}}};
int source_reads = 0;

asio::awaitable<product> load_product(std::string id) {
  ++source_reads;
  co_return source.at(id);
}

asio::awaitable<void> session(redcoro::handle& redis) {
  rc::cache products(redis, {.prefix = "example:cache_service:", .default_ttl = 30s});
  co_await products.clear();  // a clean start

  // The cached product, or the source's (then cached). value() throws rc::cache_exception
  // with the reason when Redis or the loader failed.
  auto get = [&](std::string id) -> asio::awaitable<product> {
    // Named before the co_await: g++ 12 destroys a capturing lambda passed as a temporary
    // to a coroutine twice.
    auto load = [id] { return load_product(id); };
    auto p = co_await products.get_or_load<product>(id, load);
    co_return p.value().value();
  };
  product first = co_await get("42");
  product second = co_await get("42");
  std::printf("read twice: %s at %.2f (source reads: %d)\n", first.name.c_str(), second.price,
              source_reads);
  expect(source_reads == 1, "the second read came from the cache");
  auto ttl = co_await products.ttl("42");
  expect(ttl.value().remaining <= 30s, "the entry has the cache's default TTL");

  // A price change: the source first, then the cache; no stale price either way.
  product cheaper = source.at("42");
  cheaper.price = 17.99;
  auto written =
      co_await products.write_through("42", cheaper, [](const product& p) -> asio::awaitable<void> {
        source["42"] = p;
        co_return;
      });
  written.value();
  product now = co_await get("42");
  expect(now.price == 17.99 && source_reads == 1, "the new price is cached");

  // Tags: every product of a brand, invalidated at once.
  for (const auto& [id, p] : source) {
    std::vector<std::string> tags(1, "brand:" + p.brand);
    auto stored = co_await products.set_tagged(id, p, tags);
    stored.value();
  }
  auto gone = co_await products.invalidate_tag("brand:acme");
  std::printf("invalidated brand:acme: %lld keys\n", static_cast<long long>(gone.value()));
  expect(gone.value() == 2, "both products went with their brand's tag");
  co_await get("43");
  expect(source_reads == 2, "the read after the invalidation went to the source");
  const auto m = products.metrics();
  std::printf("hits %llu, misses %llu, loads %llu\n", static_cast<unsigned long long>(m.hits),
              static_cast<unsigned long long>(m.misses), static_cast<unsigned long long>(m.loads));
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::handle redis(ioc, example::config_from(argc, argv));
  return example::run("cache_service", ioc, session(redis), [&] { redis.close(); });
}
