#include <redcoro/client/url.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using redcoro::bad_url;
using redcoro::cluster_url;
using redcoro::connection_config;
using redcoro::endpoint;
using redcoro::parse_url;
using redcoro::parsed_url;
using redcoro::sentinel_config;
using redcoro::sentinel_role;
using redcoro::url_error;

namespace {

connection_config standalone(std::string_view url) {
  const parsed_url u = parse_url(url);
  REQUIRE(std::holds_alternative<connection_config>(u));
  return std::get<connection_config>(u);
}

struct valid_standalone {
  std::string_view url;
  std::string_view host;
  std::uint16_t port;
  std::string_view unix_socket;
  std::string_view username;
  std::string_view password;
  int database;
  bool tls;
};

// The URL with a '^' where the error is expected; the '^' is not part of the URL.
struct invalid_url {
  std::string_view marked;
  std::string_view part;
};

}  // namespace

TEST_CASE("URLs of one server give the connection's target, credentials and database", "[url]") {
  const valid_standalone cases[] = {
      {"redis://localhost", "localhost", 6379, "", "", "", 0, false},
      {"redis://127.0.0.1:6380/", "127.0.0.1", 6380, "", "", "", 0, false},
      {"redis://:secret@cache.internal:7000/2", "cache.internal", 7000, "", "", "secret", 2, false},
      {"redis://alice:s3cret@cache/15", "cache", 6379, "", "alice", "s3cret", 15, false},
      {"redis://default:pw@h", "h", 6379, "", "default", "pw", 0, false},
      {"rediss://:pw@redis.example.com:6380/1", "redis.example.com", 6380, "", "", "pw", 1, true},
      {"REDIS://Host.Example", "Host.Example", 6379, "", "", "", 0, false},  // scheme: any case
      {"redis://h?db=4", "h", 6379, "", "", "", 4, false},
      {"redis://h?database=4", "h", 6379, "", "", "", 4, false},
      {"redis://h?&&db=5&", "h", 6379, "", "", "", 5, false},  // empty items are skipped
      {"redis://h?", "h", 6379, "", "", "", 0, false},
      {"redis://@h", "h", 6379, "", "", "", 0, false},           // empty userinfo: no credentials
      {"redis://:@h", "h", 6379, "", "", "", 0, false},          // nor with a ':'
      {"redis://:p@ss@h", "h", 6379, "", "", "p@ss", 0, false},  // the last '@' ends userinfo
      {"redis://u:a:b@h", "h", 6379, "", "u", "a:b", 0, false},  // the first ':' ends the user
      {"redis://h:65535", "h", 65535, "", "", "", 0, false},
      {"redis://h:1", "h", 1, "", "", "", 0, false},
      {"redis://h/007", "h", 6379, "", "", "", 7, false},
      {"redis://h/2147483647", "h", 6379, "", "", "", 2147483647, false},
      // IPv6
      {"redis://[::1]", "::1", 6379, "", "", "", 0, false},
      {"redis://[::1]:6380/3", "::1", 6380, "", "", "", 3, false},
      {"rediss://:pw@[2001:db8::17]:7000", "2001:db8::17", 7000, "", "", "pw", 0, true},
      {"redis://[::ffff:10.0.0.1]", "::ffff:10.0.0.1", 6379, "", "", "", 0, false},
      {"redis://[fe80::1%25eth0]:6380", "fe80::1%eth0", 6380, "", "", "", 0, false},
      // percent-decoding
      {"redis://us%40er:p%40ss%2Fw%3Ard%25@h%2Dx/1", "h-x", 6379, "", "us@er", "p@ss/w:rd%", 1,
       false},
      {"redis://%61lice:%E2%82%AC@h", "h", 6379, "", "alice", "\xE2\x82\xAC", 0, false},
      // unix sockets: three spellings
      {"unix:///var/run/redis/redis.sock", "", 0, "/var/run/redis/redis.sock", "", "", 0, false},
      {"unix:///tmp/r.sock?db=3", "", 0, "/tmp/r.sock", "", "", 3, false},
      {"redis+unix:///tmp/r.sock", "", 0, "/tmp/r.sock", "", "", 0, false},
      {"redis-socket:///tmp/r.sock", "", 0, "/tmp/r.sock", "", "", 0, false},
      {"unix://alice:pw@/tmp/r.sock", "", 0, "/tmp/r.sock", "alice", "pw", 0, false},
      {"unix:///tmp/my%20dir/a@b.sock", "", 0, "/tmp/my dir/a@b.sock", "", "", 0, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.url);
    const connection_config cfg = standalone(c.url);
    CHECK(cfg.unix_socket == c.unix_socket);
    if (c.unix_socket.empty()) {
      CHECK(cfg.host == c.host);
      CHECK(cfg.port == c.port);
    }
    CHECK(cfg.username == c.username);
    CHECK(cfg.password == c.password);
    CHECK(cfg.database == c.database);
    CHECK(cfg.tls.enabled == c.tls);
  }
}

TEST_CASE("URL options set the connection's settings", "[url]") {
  SECTION("names, protocol, key prefix") {
    const auto cfg = standalone("redis://h?client_name=api-7&protocol=2&key_prefix=app%3Av1:");
    CHECK(cfg.client_name == "api-7");
    CHECK(cfg.protocol == 2);
    CHECK(cfg.key_prefix == "app:v1:");
    CHECK(standalone("redis://h?name=x").client_name == "x");
    CHECK(standalone("redis://h?protocol=3").protocol == 3);
    // '+' is a plus sign (RFC 3986), not a space as in HTML forms.
    CHECK(standalone("redis://h?key_prefix=a+b%20c").key_prefix == "a+b c");
    CHECK(standalone("redis://h?key_prefix=").key_prefix.empty());
  }
  SECTION("durations: milliseconds by default, or ms / s") {
    const auto cfg = standalone(
        "redis://h?connect_timeout=2s&request_timeout=250&health_check_interval=0"
        "&reconnect_min_delay=50ms&reconnect_max_delay=10s&reconnect_max_attempts=5");
    CHECK(cfg.connect_timeout == 2s);
    CHECK(cfg.request_timeout == 250ms);
    CHECK(cfg.health_check_interval == 0ms);
    CHECK(cfg.reconnect.min_delay == 50ms);
    CHECK(cfg.reconnect.max_delay == 10s);
    CHECK(cfg.reconnect.max_attempts == 5);
    CHECK(standalone("redis://h?request_timeout=2147483647ms").request_timeout == 2147483647ms);
    CHECK(standalone("redis://h?request_timeout=2147483s").request_timeout == 2147483s);
  }
  SECTION("TLS") {
    const auto cfg = standalone(
        "rediss://h:6380?ca_file=/etc/redis/ca.pem&ca_path=/etc/ssl/certs"
        "&cert_file=/etc/redis/client.crt&key_file=/etc/redis/client%20key.pem&verify=false"
        "&sni=redis.internal");
    CHECK(cfg.tls.enabled);
    CHECK(cfg.tls.ca_file == "/etc/redis/ca.pem");
    CHECK(cfg.tls.ca_path == "/etc/ssl/certs");
    CHECK(cfg.tls.cert_file == "/etc/redis/client.crt");
    CHECK(cfg.tls.key_file == "/etc/redis/client key.pem");
    CHECK_FALSE(cfg.tls.verify_peer);
    CHECK(cfg.tls.server_name == "redis.internal");
    CHECK(standalone("rediss://h?verify_peer=true").tls.verify_peer);
    CHECK(standalone("rediss://h?server_name=x").tls.server_name == "x");
    CHECK_FALSE(standalone("redis://h").tls.enabled);
    CHECK(standalone("rediss://h").tls.verify_peer);  // on unless turned off
  }
}

TEST_CASE("cluster URLs give the seeds, the node settings and the cluster's options", "[url]") {
  const parsed_url p = parse_url(
      "rediss+cluster://bob:pw@h1:7000,h2:7001,[::1]:7002,h4"
      "?read_from=prefer_replica&max_redirects=5&refresh_interval=10s&ca_file=/ca.pem");
  REQUIRE(std::holds_alternative<cluster_url>(p));
  const auto& u = std::get<cluster_url>(p);
  CHECK(u.seeds == std::vector<endpoint>{{"h1", 7000}, {"h2", 7001}, {"::1", 7002}, {"h4", 6379}});
  CHECK(u.node.username == "bob");
  CHECK(u.node.password == "pw");
  CHECK(u.node.tls.enabled);
  CHECK(u.node.tls.ca_file == "/ca.pem");
  CHECK(u.node.database == 0);
  CHECK(u.reads == cluster_url::read_from::prefer_replica);
  CHECK(u.max_redirects == 5u);
  CHECK(u.refresh_interval == 10s);

  const cluster_url plain = redcoro::parse_cluster_url("redis+cluster://h1/0");
  CHECK(plain.seeds == std::vector<endpoint>{{"h1", 6379}});
  CHECK_FALSE(plain.node.tls.enabled);
  // Unset: the cluster module keeps cluster_config's defaults.
  CHECK_FALSE(plain.reads);
  CHECK_FALSE(plain.max_redirects);
  CHECK_FALSE(plain.refresh_interval);
  CHECK(redcoro::parse_cluster_url("redis+cluster://h1?db=0").node.database == 0);
  for (const auto& [text, reads] : {std::pair{"primary", cluster_url::read_from::primary},
                                    std::pair{"replica", cluster_url::read_from::replica},
                                    std::pair{"any", cluster_url::read_from::any}}) {
    CAPTURE(text);
    CHECK(redcoro::parse_cluster_url(std::string("redis+cluster://h?read_from=") + text).reads ==
          reads);
  }
}

TEST_CASE("sentinel URLs give the sentinels, the primary's name, the role and both settings",
          "[url]") {
  SECTION("redis+sentinel://: the name in the path, then the database") {
    const parsed_url p = parse_url(
        "redis+sentinel://:nodepw@s1,s2:26380,[::1]/my%2Dprimary/2"
        "?role=replica&sentinel_user=sen&sentinel_password=spw&client_name=app"
        "&key_prefix=k:&request_timeout=3s");
    REQUIRE(std::holds_alternative<sentinel_config>(p));
    const auto& s = std::get<sentinel_config>(p);
    CHECK(s.primary_name == "my-primary");
    CHECK(s.sentinels == std::vector<endpoint>{{"s1", 26379}, {"s2", 26380}, {"::1", 26379}});
    CHECK(s.role == sentinel_role::replica);
    CHECK(s.node.username.empty());
    CHECK(s.node.password == "nodepw");
    CHECK(s.node.database == 2);
    CHECK(s.node.key_prefix == "k:");
    CHECK(s.node.client_name == "app");
    CHECK(s.node.request_timeout == 3s);
    // The sentinels have their own credentials, no database and no keys, and share the rest.
    CHECK(s.sentinel.username == "sen");
    CHECK(s.sentinel.password == "spw");
    CHECK(s.sentinel.database == 0);
    CHECK(s.sentinel.key_prefix.empty());
    CHECK(s.sentinel.client_name == "app");
    CHECK(s.sentinel.request_timeout == 3s);
    CHECK_FALSE(s.sentinel.tls.enabled);
  }
  SECTION("rediss+sentinel:// is TLS to the sentinels and the data nodes alike") {
    const auto s = redcoro::parse_sentinel_url(
        "rediss+sentinel://s1/mymaster?ca_file=/ca.pem&sentinel_password=x&role=primary");
    CHECK(s.primary_name == "mymaster");
    CHECK(s.role == sentinel_role::primary);
    CHECK(s.node.tls.enabled);
    CHECK(s.sentinel.tls.enabled);
    CHECK(s.node.tls.ca_file == "/ca.pem");
    CHECK(s.sentinel.tls.ca_file == "/ca.pem");
    CHECK(s.sentinel.username.empty());
    CHECK(s.sentinel.password == "x");
    CHECK(s.node.password.empty());
  }
  SECTION("Lettuce's layout: redis-sentinel://hosts[/db]#name or ?sentinelMasterId=") {
    const auto a = redcoro::parse_sentinel_url("redis-sentinel://:pw@s1:26379,s2/3#mymaster");
    CHECK(a.primary_name == "mymaster");
    CHECK(a.node.database == 3);
    CHECK(a.node.password == "pw");
    CHECK(a.sentinels.size() == 2);
    const auto b = redcoro::parse_sentinel_url("rediss-sentinel://s1?sentinelMasterId=m%31");
    CHECK(b.primary_name == "m1");
    CHECK(b.node.tls.enabled);
    CHECK_THROWS_AS(redcoro::parse_sentinel_url("redis-sentinel://s1#a%20b"), bad_url);
  }
  SECTION("master and slave are accepted for the role") {
    CHECK(redcoro::parse_sentinel_url("redis+sentinel://s/m?role=slave").role ==
          sentinel_role::replica);
    CHECK(redcoro::parse_sentinel_url("redis+sentinel://s/m?role=master").role ==
          sentinel_role::primary);
  }
}

TEST_CASE("malformed URLs are refused, naming the faulty part and its position", "[url]") {
  const invalid_url cases[] = {
      // scheme
      {"^", "scheme"},
      {"^localhost:6379", "scheme"},
      {"^http://h", "scheme"},
      {"^rediss+unix:///tmp/x", "scheme"},
      {"redis:^/h", "scheme"},
      {"redis:^h:6379", "scheme"},
      // host and port
      {"redis://^", "host"},
      {"redis://^:6379", "host"},
      {"redis://:pw@^", "host"},
      {"redis://h:^abc", "port"},
      {"redis://h:^0", "port"},
      {"redis://h:^65536", "port"},
      {"redis://h:^99999999999999999999", "port"},
      {"redis://h:^", "port"},
      {"redis://h:^-1", "port"},
      {"redis://h:^+1", "port"},
      {"redis://h^ x", "host"},
      {"redis://h^%zz", "host"},
      {"redis://h^%2", "host"},
      {"redis://h^%2F", "host"},
      {"redis://h1^,h2", "host"},
      {"redis://^::1", "host"},
      {"redis://^[::1", "host"},
      {"redis://^[::1:6379", "host"},
      {"redis://[::1]^x", "host"},
      {"redis://[::1]^6379", "host"},
      {"redis://[^]", "host"},
      {"redis://[^abc]", "host"},
      {"redis://[::^g]", "host"},
      {"redis://[fe80::1^%eth0]", "host"},
      {"redis://[fe80::1^%25]", "host"},
      {"redis://[::1]:^0", "port"},
      // userinfo
      {"redis://^alice@h", "userinfo"},
      {"redis://alice^:@h", "userinfo"},
      {"redis://:p^%zz@h", "password"},
      {"redis://a^%4:pw@h", "username"},
      // an '@' after the host: the end of a password holding a '/', '?' or '#'
      {"rediss://:abc/DEF+ghi=^@host:6380", "userinfo"},
      {"redis://:abc?def^@host", "userinfo"},
      {"redis://:abc#def^@host", "userinfo"},
      {"redis://h/0^@x", "userinfo"},
      {"redis://h?client_name=a^@b", "userinfo"},
      {"redis-sentinel://s1#m^@x", "userinfo"},
      {"unix:///tmp/x?client_name=a^@b", "userinfo"},
      {"unix://^:pa/ss@/tmp/x", "host"},  // a socket path may hold an @: only the host is wrong
      // path and database
      {"redis://h/^x", "db"},
      {"redis://h/^-1", "db"},
      {"redis://h/^2147483648", "db"},
      {"redis://h/1^/2", "path"},
      {"redis://h/^%31", "db"},
      // options
      {"redis://h?^foo=1", "option"},
      {"redis://h?^db", "option"},
      {"redis://h?^=1", "option"},
      {"redis://h?^DB=1", "option"},  // names are case-sensitive
      {"redis://h?db=^x", "db"},
      {"redis://h?db=^", "db"},
      {"redis://h/1?^db=1", "option"},
      {"redis://h?db=1&^db=2", "option"},
      {"redis://h?name=a&^client_name=b", "option"},
      {"redis://h?protocol=^4", "protocol"},
      {"redis://h?protocol=^", "protocol"},
      {"redis://h?connect_timeout=^0", "connect_timeout"},
      {"redis://h?connect_timeout=^5m", "connect_timeout"},
      {"redis://h?request_timeout=^1.5s", "request_timeout"},
      {"redis://h?request_timeout=^-1", "request_timeout"},
      {"redis://h?request_timeout=^ms", "request_timeout"},
      {"redis://h?request_timeout=^2147483648", "request_timeout"},
      {"redis://h?request_timeout=^2147484s", "request_timeout"},
      {"redis://h?health_check_interval=^x", "health_check_interval"},
      {"redis://h?reconnect_max_attempts=^many", "reconnect_max_attempts"},
      {"redis://h?client_name=^a%20b", "client_name"},
      {"redis://h?client_name=a^%0A", "client_name"},
      {"redis://h?key_prefix=^%", "key_prefix"},
      {"redis://h?^timeout=5", "option"},
      {"redis://h?^password=x", "option"},
      {"redis://h?^user=x", "option"},
      {"redis://h?^ca_file=/x", "option"},  // TLS option without TLS
      {"redis://h?^verify=false", "option"},
      {"rediss://h?verify=^maybe", "verify"},
      {"redis://h?^role=replica", "option"},   // sentinel only
      {"redis://h?^read_from=any", "option"},  // cluster only
      {"redis+sentinel://s/m?^read_from=any", "option"},
      {"redis+cluster://h?^role=replica", "option"},
      {"redis+cluster://h?read_from=^nearest", "read_from"},
      {"redis+cluster://h?max_redirects=^-1", "max_redirects"},
      {"redis+cluster://h?refresh_interval=^1h", "refresh_interval"},
      {"redis://h^#frag", "fragment"},
      {"redis://h?db=1^#", "fragment"},
      // unix
      {"unix://^", "path"},
      {"unix://^/", "path"},
      {"unix://^localhost/tmp/x.sock", "host"},
      {"unix:///tmp/x^%00", "path"},
      {"unix:///tmp/x?^ca_file=/x", "option"},
      // cluster
      {"redis+cluster://^", "host"},
      {"redis+cluster://h1,^,h2", "host"},
      {"redis+cluster://h1,^", "host"},
      {"redis+cluster://h1,h2:^0", "port"},
      {"redis+cluster://h/^1", "db"},
      {"redis+cluster://h?db=^2", "db"},
      {"redis+cluster://h/0^/0", "path"},
      // sentinel
      {"redis+sentinel://s1^", "primary name"},
      {"redis+sentinel://s1^/", "primary name"},
      {"redis+sentinel://s1/^/0", "primary name"},
      {"redis+sentinel://s1/m/^x", "db"},
      {"redis+sentinel://s1/m/1^/2", "path"},
      {"redis+sentinel://s1/a^%20b", "primary name"},
      {"redis+sentinel://s1/m?role=^leader", "role"},
      {"redis+sentinel://s1/m?sentinel_user=^u", "sentinel_user"},
      {"redis+sentinel://s1/m^#m", "fragment"},
      {"redis+sentinel://s1/m?^sentinelMasterId=m", "option"},
      {"redis+sentinel://s1/m?sentinel_password=a&^sentinel_password=b", "option"},
      {"redis-sentinel://s1^", "primary name"},
      {"redis-sentinel://s1#^", "primary name"},
      {"redis-sentinel://s1?sentinelMasterId=a^#b", "fragment"},
      {"redis-sentinel://s1?sentinelMasterId=^", "primary name"},
      {"redis-sentinel://s1/^m#m", "db"},
  };
  for (const auto& c : cases) {
    std::string url(c.marked);
    const std::size_t position = url.find('^');
    REQUIRE(position != std::string::npos);
    url.erase(position, 1);
    CAPTURE(url);
    url_error err;
    const auto parsed = parse_url(url, err);
    CHECK_FALSE(parsed);
    CHECK(err.part == c.part);
    CHECK(err.position == position);
    CHECK_FALSE(err.message.empty());
    CHECK(err.what().find(err.message) != std::string::npos);
    CHECK_THROWS_AS(parse_url(url), bad_url);
  }
}

TEST_CASE("an error says which part is wrong and where, and bad_url carries it", "[url]") {
  try {
    (void)parse_url("redis://h:99999");
    FAIL("no exception");
  } catch (const bad_url& e) {
    CHECK(e.error().position == 10);
    CHECK(e.error().part == "port");
    CHECK(std::string(e.what()) ==
          "invalid Redis URL: bad port: expected a number from 1 to 65535 (port at position 10)");
  }
  url_error err;
  CHECK_FALSE(parse_url("redis+cluster://h/3", err));
  CHECK(err.what() == "invalid Redis URL: a cluster has only database 0 (db at position 18)");
  // A successful parse leaves no stale error behind.
  CHECK(parse_url("redis://h", err));
  CHECK(err.part.empty());
}

TEST_CASE("the typed parse functions refuse URLs of another kind", "[url]") {
  url_error err;
  CHECK_FALSE(redcoro::parse_connection_url("redis+cluster://h", err));
  CHECK(err.part == "scheme");
  CHECK(err.position == 0);
  CHECK_FALSE(redcoro::parse_cluster_url("redis://h", err));
  CHECK(err.part == "scheme");
  CHECK_FALSE(redcoro::parse_sentinel_url("unix:///x", err));
  CHECK(err.part == "scheme");
  CHECK_THROWS_AS(redcoro::parse_connection_url("redis+sentinel://s/m"), bad_url);
  CHECK(redcoro::parse_connection_url("unix:///x").unix_socket == "/x");
  CHECK(redcoro::parse_cluster_url("redis+cluster://a,b").seeds.size() == 2);
}

TEST_CASE("settings a URL does not mention come from the defaults, the target never does",
          "[url]") {
  connection_config d;
  d.host = "elsewhere";
  d.port = 7777;
  d.unix_socket = "/not/this.sock";
  d.password = "from-the-vault";
  d.database = 4;
  d.request_timeout = 3s;
  d.key_prefix = "app:";
  d.tls.ca_file = "/ca.pem";

  const auto a = redcoro::parse_connection_url("redis://h", d);
  CHECK(a.host == "h");
  CHECK(a.port == 6379);  // the URL convention, not the defaults
  CHECK(a.unix_socket.empty());
  CHECK(a.password == "from-the-vault");
  CHECK(a.database == 4);
  CHECK(a.request_timeout == 3s);
  CHECK(a.key_prefix == "app:");
  CHECK_FALSE(a.tls.enabled);  // the scheme decides

  const auto b = redcoro::parse_connection_url("rediss://alice:pw@h/0?request_timeout=1s", d);
  CHECK(b.username == "alice");
  CHECK(b.password == "pw");
  CHECK(b.database == 0);
  CHECK(b.request_timeout == 1s);
  CHECK(b.tls.enabled);
  CHECK(b.tls.ca_file == "/ca.pem");

  const auto c = redcoro::parse_connection_url("unix:///tmp/r.sock", d);
  CHECK(c.unix_socket == "/tmp/r.sock");

  // A cluster has one database, whatever the defaults say.
  CHECK(redcoro::parse_cluster_url("redis+cluster://h", d).node.database == 0);

  const auto s = redcoro::parse_sentinel_url("redis+sentinel://s/m", d);
  CHECK(s.node.password == "from-the-vault");
  CHECK(s.node.database == 4);
  CHECK(s.sentinel.password.empty());  // the data nodes' password is not the sentinels'
  CHECK(s.sentinel.database == 0);
  CHECK(s.sentinel.key_prefix.empty());
  CHECK(s.sentinel.request_timeout == 3s);
}

TEST_CASE("the printable form masks the password and reads back", "[url]") {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"redis://localhost", "redis://localhost:6379"},
      {"redis://user:secret@h/2", "redis://user:****@h:6379/2"},
      {"redis://:secret@h", "redis://:****@h:6379"},
      {"rediss://[::1]:6380?verify=false&sni=x&ca_file=/a%20b.pem",
       "rediss://[::1]:6380?ca_file=/a%20b.pem&verify=false&server_name=x"},
      {"redis://[fe80::1%25eth0]", "redis://[fe80::1%25eth0]:6379"},
      {"redis://u%40x:p@h?name=n&protocol=2&key_prefix=a:b+c&connect_timeout=1500"
       "&request_timeout=0&health_check_interval=60s&reconnect_max_attempts=3"
       "&reconnect_min_delay=1s&reconnect_max_delay=7s",
       ""},
      {"redis://h?connect_timeout=1500&request_timeout=0&reconnect_min_delay=1s",
       "redis://h:6379?connect_timeout=1500ms&request_timeout=0&reconnect_min_delay=1s"},
      {"redis://h?key_prefix=a:b+c%26d", "redis://h:6379?key_prefix=a:b%2Bc%26d"},
      {"unix://:pw@/tmp/my%20dir/r.sock?db=2", "unix://:****@/tmp/my%20dir/r.sock?db=2"},
      {"redis+cluster://u:pw@h1:7000,[::1]:7001?read_from=replica&max_redirects=3"
       "&refresh_interval=0",
       "redis+cluster://u:****@h1:7000,[::1]:7001?read_from=replica&max_redirects=3"
       "&refresh_interval=0"},
      {"rediss+cluster://h", "rediss+cluster://h:6379"},
      {"redis+sentinel://:pw@s1,s2:5000/my%2Dprimary/3?role=slave&sentinel_user=su"
       "&sentinel_password=spw",
       "redis+sentinel://:****@s1:26379,s2:5000/my-primary/3?role=replica&sentinel_user=su"
       "&sentinel_password=****"},
      {"rediss-sentinel://s1#m", "rediss+sentinel://s1:26379/m"},
  };
  for (const auto& [url, expected] : cases) {
    CAPTURE(url);
    url_error err;
    const auto first = parse_url(url, err);
    REQUIRE(first);
    const std::string printed = redcoro::to_string(*first);
    CAPTURE(printed);
    if (!expected.empty()) CHECK(printed == expected);
    CHECK(printed.find("secret") == std::string::npos);
    CHECK(printed.find("spw") == std::string::npos);
    // Read back: the same settings, except that the password is now "****".
    const auto second = parse_url(printed, err);
    REQUIRE(second);
    CHECK(redcoro::to_string(*second) == printed);
    CHECK(second->index() == first->index());
    const auto password = [](const parsed_url& p) {
      return std::visit(
          [](const auto& x) -> std::string {
            if constexpr (std::is_same_v<std::decay_t<decltype(x)>, connection_config>)
              return x.password;
            else
              return x.node.password;
          },
          p);
    };
    if (!password(*first).empty()) CHECK(password(*second) == "****");
  }
  CHECK(endpoint{"h", 1}.to_string() == "h:1");
  CHECK(endpoint{"::1", 7000}.to_string() == "[::1]:7000");
}

TEST_CASE("no error text and no printable form contains the password", "[url]") {
  // Valid and invalid URLs with the password in every place it can end up, including where a
  // '/', '?', '#' or '@' that should have been percent-encoded makes the parser cut the URL
  // in the middle of it.
  const std::string_view pw = "Zebra7Secret";
  const std::string urls[] = {
      "redis://:Zebra7Secret@h",
      "redis://alice:Zebra7Secret@h:6379/2",
      "rediss://alice:Zebra7Secret@[::1]:6380?verify=false",
      "unix://alice:Zebra7Secret@/tmp/r.sock",
      "redis+cluster://alice:Zebra7Secret@h1,h2",
      "redis+sentinel://:Zebra7Secret@s1/m?sentinel_password=Zebra7Secret",
      "rediss-sentinel://alice:Zebra7Secret@s1#m",
      // malformed around the password
      "redis://alice:Zebra7/Secret@h",
      "redis://alice:Zebra7?Secret@h",
      "redis://alice:Zebra7#Secret@h",
      "redis://alice:6379/Zebra7Secret@h",
      "redis://h:6379?x=Zebra7Secret@h",
      "redis://Zebra7Secret:6379/1?Zebra7Secret=1",
      "redis://:Zebra7Secret%zz@h",
      "redis://:Zebra7Secret@h:bad",
      "redis://:Zebra7Secret@h?foo=Zebra7Secret",
      "redis://Zebra7Secret@h",
      "redis+sentinel://s/m?sentinel_password=Zebra7Secret%",
      "redis+sentinel://s/m?sentinel_password=Zebra7Secret&sentinel_password=Zebra7Secret",
      "Zebra7Secret://h",
      "redis://h/Zebra7Secret",
      "redis://h?db=Zebra7Secret",
      "redis://h?client_name=Zebra7Secret%20",
  };
  const auto leaks = [&](std::string_view text) {
    for (const std::string_view piece : {pw, std::string_view("Zebra"), std::string_view("Secret")})
      if (text.find(piece) != std::string_view::npos) return true;
    return false;
  };
  for (const auto& url : urls) {
    CAPTURE(url);
    url_error err;
    const auto parsed = parse_url(url, err);
    if (parsed) {
      const std::string printed = redcoro::to_string(*parsed);
      CAPTURE(printed);
      CHECK_FALSE(leaks(printed));
      CHECK(printed.find("****") != std::string::npos);
    } else {
      CHECK_FALSE(leaks(err.what()));
      CHECK_FALSE(leaks(err.part));
      CHECK_FALSE(leaks(err.message));
      try {
        (void)parse_url(url);
      } catch (const bad_url& e) {
        CHECK_FALSE(leaks(e.what()));
      }
    }
  }
  SECTION("a '/' in the password that is not encoded is named as the likely cause") {
    url_error err;
    CHECK_FALSE(parse_url("rediss://:abc/DEF+ghi=@host:6380", err));
    CHECK(err.part == "userinfo");
    CHECK(err.position == 22);
    CHECK(err.what().find("%2F") != std::string::npos);
    const auto ok = parse_url("rediss://:abc%2FDEF+ghi=@host:6380", err);
    REQUIRE(ok);
    CHECK(std::get<connection_config>(*ok).password == "abc/DEF+ghi=");
  }
}

TEST_CASE("every prefix and every one-byte change of a URL parses or fails cleanly", "[url]") {
  const std::string_view seeds[] = {
      "redis://alice:pw@[fe80::1%25eth0]:6380/2?client_name=a&connect_timeout=2s",
      "rediss+sentinel://:p%40w@s1:1,[::1]/m/3?role=replica&sentinel_password=x&verify=false",
      "redis-sentinel://s1,s2/1?sentinelMasterId=m",
      "redis+cluster://u:p@h1:7000,h2?read_from=any&refresh_interval=0",
      "unix://u:p@/tmp/a@b.sock?db=3&key_prefix=k%3A",
  };
  const char replacements[] = {'@', ':', '/', '?', '#', '%', '[',
                               ']', ',', '&', '=', '0', 'x', '\0'};
  const auto check = [](std::string_view url) {
    url_error err;
    const auto parsed = parse_url(url, err);
    if (!parsed) {
      CHECK(err.position <= url.size());
      CHECK_FALSE(err.part.empty());
      return;
    }
    // Whatever parses prints as something that parses again to the same printed form.
    const std::string printed = redcoro::to_string(*parsed);
    const auto again = parse_url(printed, err);
    CHECK(again);
    if (again) CHECK(redcoro::to_string(*again) == printed);
  };
  for (const auto seed : seeds) {
    CAPTURE(seed);
    for (std::size_t n = 0; n <= seed.size(); ++n)
      check(seed.substr(0, n));
    std::string url(seed);
    for (std::size_t i = 0; i < url.size(); ++i) {
      const char saved = url[i];
      for (const char r : replacements) {
        url[i] = r;
        CAPTURE(url);
        check(url);
      }
      url[i] = saved;
    }
  }
}
