#include <redcoro/client/detail/read_buffer.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

using redcoro::detail::read_buffer;

TEST_CASE("the read buffer grows to a size asked for, keeping what is in use", "[read_buffer]") {
  read_buffer b(16);
  CHECK(b.size() == 512);  // a floor
  std::memcpy(b.free_data(), "$5\r\nhel", 7);
  b.commit(7);
  b.consume(4);  // the header was parsed; the body starts at the front
  CHECK(b.used() == 3);
  b.reserve(100000);  // what the header announced
  CHECK(b.size() == 100000);
  CHECK(std::string(b.data(), b.used()) == "hel");
  b.reserve(10);  // never smaller
  CHECK(b.size() == 100000);
  b.consume(3);
  b.shrink(512, 4096);
  CHECK(b.size() == 512);
  b.shrink(512, 4096);
  CHECK(b.size() == 512);
}

TEST_CASE("the read buffer keeps a size up to `keep`, and what is in use", "[read_buffer]") {
  read_buffer b(1024);
  b.reserve(4096);
  b.shrink(1024, 8192);  // small enough to keep
  CHECK(b.size() == 4096);
  b.reserve(20000);
  std::memset(b.free_data(), 'a', 2000);
  b.commit(2000);
  b.shrink(1024, 8192);  // 2000 bytes in use do not fit in 1024
  CHECK(b.size() == 20000);
  b.consume(1500);
  b.shrink(1024, 8192);
  CHECK(b.size() == 1024);
  CHECK(std::string(b.data(), b.used()) == std::string(500, 'a'));
}
