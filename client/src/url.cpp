#include <redcoro/client/url.hpp>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <utility>

namespace redcoro {

namespace {

// Every message and part below is a literal: nothing of the URL is ever copied into an
// error, so a password cannot leak through one, however the URL is cut.

enum class layout : std::uint8_t { tcp, unix_socket, cluster, sentinel, sentinel_lettuce };
enum class kind : std::uint8_t { standalone, cluster, sentinel, any };

struct scheme_info {
  std::string_view name;
  layout form;
  bool tls;
};

constexpr std::array schemes{
    scheme_info{"redis", layout::tcp, false},
    scheme_info{"rediss", layout::tcp, true},
    scheme_info{"unix", layout::unix_socket, false},
    scheme_info{"redis+unix", layout::unix_socket, false},    // redis-rs
    scheme_info{"redis-socket", layout::unix_socket, false},  // Lettuce
    scheme_info{"redis+cluster", layout::cluster, false},
    scheme_info{"rediss+cluster", layout::cluster, true},
    scheme_info{"redis+sentinel", layout::sentinel, false},
    scheme_info{"rediss+sentinel", layout::sentinel, true},
    scheme_info{"redis-sentinel", layout::sentinel_lettuce, false},  // Lettuce
    scheme_info{"rediss-sentinel", layout::sentinel_lettuce, true},
};

kind kind_of(layout l) {
  switch (l) {
    case layout::tcp:
    case layout::unix_socket:
      return kind::standalone;
    case layout::cluster:
      return kind::cluster;
    default:
      return kind::sentinel;
  }
}

enum class opt : std::uint8_t {
  db,
  client_name,
  protocol,
  key_prefix,
  connect_timeout,
  request_timeout,
  health_check_interval,
  reconnect_min_delay,
  reconnect_max_delay,
  reconnect_max_attempts,
  ca_file,
  ca_path,
  cert_file,
  key_file,
  verify,
  server_name,
  role,
  sentinel_user,
  sentinel_password,
  sentinel_master_id,
  read_from,
  max_redirects,
  refresh_interval,
  refused,
};

enum class scope : std::uint8_t { everywhere, tls, sentinel, lettuce, cluster, refused };

struct option_info {
  std::string_view name;
  opt id;
  std::string_view canonical;  // the part named by errors in its value
  scope where;
};

constexpr std::array options{
    option_info{"db", opt::db, "db", scope::everywhere},
    option_info{"database", opt::db, "db", scope::everywhere},
    option_info{"client_name", opt::client_name, "client_name", scope::everywhere},
    option_info{"name", opt::client_name, "client_name", scope::everywhere},
    option_info{"protocol", opt::protocol, "protocol", scope::everywhere},
    option_info{"key_prefix", opt::key_prefix, "key_prefix", scope::everywhere},
    option_info{"connect_timeout", opt::connect_timeout, "connect_timeout", scope::everywhere},
    option_info{"request_timeout", opt::request_timeout, "request_timeout", scope::everywhere},
    option_info{"health_check_interval", opt::health_check_interval, "health_check_interval",
                scope::everywhere},
    option_info{"reconnect_min_delay", opt::reconnect_min_delay, "reconnect_min_delay",
                scope::everywhere},
    option_info{"reconnect_max_delay", opt::reconnect_max_delay, "reconnect_max_delay",
                scope::everywhere},
    option_info{"reconnect_max_attempts", opt::reconnect_max_attempts, "reconnect_max_attempts",
                scope::everywhere},
    option_info{"ca_file", opt::ca_file, "ca_file", scope::tls},
    option_info{"ca_path", opt::ca_path, "ca_path", scope::tls},
    option_info{"cert_file", opt::cert_file, "cert_file", scope::tls},
    option_info{"key_file", opt::key_file, "key_file", scope::tls},
    option_info{"verify", opt::verify, "verify", scope::tls},
    option_info{"verify_peer", opt::verify, "verify", scope::tls},
    option_info{"server_name", opt::server_name, "server_name", scope::tls},
    option_info{"sni", opt::server_name, "server_name", scope::tls},
    option_info{"role", opt::role, "role", scope::sentinel},
    option_info{"sentinel_user", opt::sentinel_user, "sentinel_user", scope::sentinel},
    option_info{"sentinel_username", opt::sentinel_user, "sentinel_user", scope::sentinel},
    option_info{"sentinel_password", opt::sentinel_password, "sentinel_password", scope::sentinel},
    option_info{"sentinelMasterId", opt::sentinel_master_id, "primary name", scope::lettuce},
    option_info{"read_from", opt::read_from, "read_from", scope::cluster},
    option_info{"max_redirects", opt::max_redirects, "max_redirects", scope::cluster},
    option_info{"refresh_interval", opt::refresh_interval, "refresh_interval", scope::cluster},
    // Names other clients use with another meaning, or for credentials: refused with a
    // pointer to ours rather than as merely unknown.
    option_info{"timeout", opt::refused, "option", scope::refused},
    option_info{"password", opt::refused, "option", scope::refused},
    option_info{"user", opt::refused, "option", scope::refused},
    option_info{"username", opt::refused, "option", scope::refused},
};

// Longer than any timer redcoro arms, short enough that adding it to a time point never
// overflows: about 24.8 days.
constexpr std::int64_t max_duration_ms = INT32_MAX;

bool is_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_unreserved(unsigned char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool host_char(unsigned char c) {
  return is_unreserved(c);
}
bool any_char(unsigned char) {
  return true;
}
bool not_control(unsigned char c) {
  return c >= 0x20 && c != 0x7f;
}
bool visible(unsigned char c) {
  return c > 0x20 && c != 0x7f;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != b[i]) return false;
  }
  return true;
}

std::optional<std::uint64_t> parse_count(std::string_view s, std::uint64_t max) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

// "250", "250ms", "5s".
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  std::int64_t scale = 1;
  if (s.ends_with("ms")) {
    s.remove_suffix(2);
  } else if (s.ends_with('s')) {
    s.remove_suffix(1);
    scale = 1000;
  }
  const auto v = parse_count(s, static_cast<std::uint64_t>(max_duration_ms));
  if (!v || static_cast<std::int64_t>(*v) > max_duration_ms / scale) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(*v) * scale);
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "true" || s == "1" || s == "yes") return true;
  if (s == "false" || s == "0" || s == "no") return false;
  return std::nullopt;
}

class url_parser {
 public:
  url_parser(std::string_view url, url_error& err, const connection_config& defaults)
      : url_(url), err_(err), node_(defaults) {}

  bool parse(kind expected) {
    if (!parse_scheme(expected)) return false;
    const std::size_t start = scheme_end_ + 3;
    std::size_t authority_end = url_.find_first_of("/?#", start);
    if (authority_end == std::string_view::npos) authority_end = url_.size();
    const std::size_t fragment = std::min(url_.find('#', authority_end), url_.size());
    const std::size_t query = std::min(url_.find('?', authority_end), fragment);

    // A '/', '?' or '#' in a password ends the authority early and leaves the '@' after
    // it: refused, or the rest of the password could be read as a host, a path or an option
    // and end up in a log. A unix socket's path may hold an '@'.
    const std::size_t stray = url_.find('@', form_ == layout::unix_socket ? query : authority_end);
    if (stray != std::string_view::npos)
      return fail(stray, "userinfo",
                  "an '@' after the host: percent-encode any '/', '?', '#' or '@' in the "
                  "password (%2F, %3F, %23, %40), and an '@' in an option (%40)");
    const std::string_view authority = url_.substr(start, authority_end - start);
    const std::size_t at = authority.rfind('@');
    std::size_t hosts_at = start;
    if (at != std::string_view::npos) {
      if (!parse_userinfo(authority.substr(0, at), start)) return false;
      hosts_at = start + at + 1;
    }
    if (!parse_hosts(url_.substr(hosts_at, authority_end - hosts_at), hosts_at)) return false;
    if (!parse_path(url_.substr(authority_end, query - authority_end), authority_end)) return false;
    if (query < fragment && !parse_query(query + 1, fragment)) return false;
    if (fragment < url_.size() && !parse_fragment(fragment)) return false;
    return finish();
  }

  parsed_url take() {
    switch (kind_of(form_)) {
      case kind::standalone:
        return std::move(node_);
      case kind::cluster:
        return cluster_url{std::move(hosts_), std::move(node_), reads_, max_redirects_,
                           refresh_interval_};
      default:
        return sentinel_config{std::move(primary_name_), std::move(hosts_), role_, std::move(node_),
                               std::move(sentinel_)};
    }
  }

 private:
  bool fail(std::size_t position, std::string_view part, std::string_view message) {
    err_ = url_error{position, part, message};
    return false;
  }

  // Appends `in` (found at `pos` in the URL), percent-decoded, to `out`; every byte, as
  // written or decoded, must pass `allowed`.
  template <class Allowed>
  bool decode(std::string_view in, std::size_t pos, std::string_view part, std::string& out,
              Allowed allowed, std::string_view refused) {
    out.reserve(out.size() + in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
      char c = in[i];
      if (c == '%') {
        const int hi = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
        const int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
        if (hi < 0 || lo < 0)
          return fail(pos + i, part, "bad percent-escape: '%' must be followed by two hex digits");
        c = static_cast<char>(hi * 16 + lo);
        if (!allowed(static_cast<unsigned char>(c))) return fail(pos + i, part, refused);
        i += 2;
      } else if (!allowed(static_cast<unsigned char>(c))) {
        return fail(pos + i, part, refused);
      }
      out += c;
    }
    return true;
  }

  bool parse_scheme(kind expected) {
    const std::size_t colon = url_.find(':');
    if (colon == std::string_view::npos)
      return fail(0, "scheme",
                  "no scheme: a Redis URL starts with redis://, rediss://, unix://, "
                  "redis+cluster:// or redis+sentinel://");
    const std::string_view name = url_.substr(0, colon);
    const scheme_info* found = nullptr;
    for (const auto& s : schemes)
      if (equal_ignoring_case(name, s.name)) found = &s;
    if (!found)
      return fail(0, "scheme",
                  "unknown scheme: expected redis, rediss, unix, redis+unix, redis-socket, "
                  "redis+cluster, rediss+cluster, redis+sentinel, rediss+sentinel, "
                  "redis-sentinel or rediss-sentinel");
    if (url_.substr(colon + 1, 2) != "//")
      return fail(colon + 1, "scheme", "expected '//' after the scheme");
    form_ = found->form;
    tls_ = found->tls;
    scheme_end_ = colon;
    const kind k = kind_of(form_);
    if (expected != kind::any && expected != k) {
      switch (expected) {
        case kind::standalone:
          return fail(0, "scheme", "expected one server's URL: redis://, rediss:// or unix://");
        case kind::cluster:
          return fail(0, "scheme", "expected a cluster URL: redis+cluster:// or rediss+cluster://");
        default:
          return fail(0, "scheme",
                      "expected a Sentinel URL: redis+sentinel:// or rediss+sentinel://");
      }
    }
    return true;
  }

  bool parse_userinfo(std::string_view info, std::size_t pos) {
    const std::size_t colon = info.find(':');
    if (colon == std::string_view::npos) {
      if (info.empty()) return true;
      // Clients disagree on a lone name: redis-cli and Lettuce read it as a password,
      // redis-py and go-redis as a user name. Guessing wrong would print a password in logs
      // as a user name, so neither is assumed.
      return fail(pos, "userinfo",
                  "a name without ':' is ambiguous: write user:password@, or :password@ for "
                  "the default user");
    }
    std::string user, password;
    if (!decode(info.substr(0, colon), pos, "username", user, any_char, {})) return false;
    if (!decode(info.substr(colon + 1), pos + colon + 1, "password", password, any_char, {}))
      return false;
    // The connection authenticates only when it has a password: a user name alone would be
    // ignored without a word.
    if (!user.empty() && password.empty())
      return fail(pos + colon, "userinfo", "a user name needs a password: user:password@");
    node_.username = std::move(user);
    node_.password = std::move(password);
    return true;
  }

  bool parse_hosts(std::string_view text, std::size_t pos) {
    if (form_ == layout::unix_socket) {
      if (!text.empty())
        return fail(pos, "host",
                    "a unix socket URL has no host: unix:///path/to/redis.sock (three slashes)");
      return true;
    }
    const std::uint16_t default_port = kind_of(form_) == kind::sentinel ? 26379 : 6379;
    if (text.empty()) return fail(pos, "host", "empty host");
    std::size_t begin = 0;
    while (true) {
      std::size_t comma = text.find(',', begin);
      if (comma != std::string_view::npos && form_ == layout::tcp)
        return fail(pos + comma, "host",
                    "several hosts: use redis+cluster:// for a cluster, redis+sentinel:// for "
                    "sentinels");
      if (comma == std::string_view::npos) comma = text.size();
      endpoint e;
      e.port = default_port;
      if (!parse_host(text.substr(begin, comma - begin), pos + begin, e)) return false;
      if (form_ == layout::tcp) {
        node_.host = std::move(e.host);
        node_.port = e.port;
        node_.unix_socket.clear();
      } else {
        hosts_.push_back(std::move(e));
      }
      if (comma == text.size()) return true;
      begin = comma + 1;
    }
  }

  bool parse_host(std::string_view text, std::size_t pos, endpoint& out) {
    if (text.empty()) return fail(pos, "host", "empty host");
    std::size_t port_at;
    if (text.front() == '[') {
      const std::size_t close = text.find(']');
      if (close == std::string_view::npos)
        return fail(pos, "host", "unterminated IPv6 address: ']' is missing");
      if (!parse_ipv6(text.substr(1, close - 1), pos + 1, out.host)) return false;
      port_at = close + 1;
      if (port_at < text.size() && text[port_at] != ':')
        return fail(pos + port_at, "host", "expected ':' and a port after ']'");
    } else {
      port_at = std::min(text.find(':'), text.size());
      if (text.find(':', port_at + 1) != std::string_view::npos)
        return fail(pos, "host", "an IPv6 address must be in brackets: [::1]:6379");
      if (port_at == 0) return fail(pos, "host", "empty host");
      if (!decode(text.substr(0, port_at), pos, "host", out.host, host_char,
                  "character not allowed in a host name"))
        return false;
    }
    if (port_at == text.size()) return true;
    const std::string_view port = text.substr(port_at + 1);
    if (port.empty())
      return fail(pos + port_at + 1, "port", "empty port: give one or drop the ':'");
    const auto v = parse_count(port, 65535);
    if (!v || *v == 0)
      return fail(pos + port_at + 1, "port", "bad port: expected a number from 1 to 65535");
    out.port = static_cast<std::uint16_t>(*v);
    return true;
  }

  // "::1", "fe80::1%25eth0" (RFC 6874: the zone's '%' is written %25).
  bool parse_ipv6(std::string_view text, std::size_t pos, std::string& out) {
    if (text.empty()) return fail(pos, "host", "empty IPv6 address");
    const std::size_t zone = std::min(text.find('%'), text.size());
    const std::string_view address = text.substr(0, zone);
    for (std::size_t i = 0; i < address.size(); ++i) {
      const char c = address[i];
      if (hex_value(c) < 0 && c != ':' && c != '.')
        return fail(pos + i, "host", "character not allowed in an IPv6 address");
    }
    if (address.find(':') == std::string_view::npos)
      return fail(pos, "host", "not an IPv6 address: brackets are for IPv6 addresses only");
    out.assign(address);
    if (zone == text.size()) return true;
    if (!text.substr(zone).starts_with("%25") || zone + 3 == text.size())
      return fail(pos + zone, "host",
                  "bad IPv6 zone: write it %25 and a name, as in fe80::1%25eth0");
    out += '%';
    return decode(text.substr(zone + 3), pos + zone + 3, "host", out, host_char,
                  "character not allowed in an IPv6 zone");
  }

  bool parse_db(std::string_view text, std::size_t pos) {
    const auto v = parse_count(text, INT_MAX);
    if (!v) return fail(pos, "db", "bad database: expected a number from 0");
    if (kind_of(form_) == kind::cluster && *v != 0)
      return fail(pos, "db", "a cluster has only database 0");
    node_.database = static_cast<int>(*v);
    db_given_ = true;
    return true;
  }

  bool parse_path(std::string_view path, std::size_t pos) {
    switch (form_) {
      case layout::unix_socket:
        if (path.size() <= 1)
          return fail(pos, "path", "the socket's path is missing: unix:///path/to/redis.sock");
        node_.unix_socket.clear();
        node_.tls.enabled = false;
        return decode(path, pos, "path", node_.unix_socket, not_control,
                      "control character in the socket's path");
      case layout::sentinel: {
        if (path.size() <= 1)
          return fail(pos, "primary name",
                      "the primary's name is missing: redis+sentinel://host:26379/mymaster");
        const std::size_t slash = std::min(path.find('/', 1), path.size());
        if (slash == 1) return fail(pos + 1, "primary name", "empty primary name");
        if (!decode(path.substr(1, slash - 1), pos + 1, "primary name", primary_name_, visible,
                    "space or control character in the primary's name"))
          return false;
        path = path.substr(slash);
        pos += slash;
        break;
      }
      default:
        break;
    }
    if (path.size() <= 1) return true;  // "" or "/"
    const std::size_t slash = path.find('/', 1);
    if (slash != std::string_view::npos)
      return fail(pos + slash, "path",
                  form_ == layout::sentinel ? "expected /name or /name/db" : "expected /db");
    return parse_db(path.substr(1), pos + 1);
  }

  bool parse_query(std::size_t begin, std::size_t end) {
    while (begin < end) {
      const std::size_t amp = std::min(url_.find('&', begin), end);
      const std::string_view item = url_.substr(begin, amp - begin);
      if (!item.empty() && !parse_option(item, begin)) return false;
      begin = amp + 1;
    }
    return true;
  }

  bool parse_option(std::string_view item, std::size_t pos) {
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return fail(pos, "option", "expected name=value");
    const std::string_view name = item.substr(0, eq);
    const option_info* o = nullptr;
    for (const auto& candidate : options)
      if (candidate.name == name) o = &candidate;
    if (!o)
      return fail(pos, "option", "unknown option (see \"Connection URLs\" in client/README.md)");
    switch (o->where) {
      case scope::everywhere:
        break;
      case scope::tls:
        if (!tls_)
          return fail(pos, "option",
                      "a TLS option in a URL without TLS: use rediss://, rediss+cluster:// or "
                      "rediss+sentinel://");
        break;
      case scope::sentinel:
        if (kind_of(form_) != kind::sentinel)
          return fail(pos, "option", "this option is for Sentinel URLs only");
        break;
      case scope::lettuce:
        if (form_ != layout::sentinel_lettuce)
          return fail(pos, "option", "this option is for redis-sentinel:// URLs only");
        break;
      case scope::cluster:
        if (form_ != layout::cluster)
          return fail(pos, "option", "this option is for cluster URLs only");
        break;
      case scope::refused:
        return fail(pos, "option",
                    name == "timeout"
                        ? "ambiguous option: write connect_timeout or request_timeout"
                        : "credentials go before the host: redis://user:password@host");
    }
    const auto bit = std::uint32_t{1} << static_cast<unsigned>(o->id);
    if ((seen_ & bit) != 0 || (o->id == opt::db && db_given_))
      return fail(pos, "option", "option given twice (or the database both as /db and ?db=)");
    seen_ |= bit;
    return apply(*o, item.substr(eq + 1), pos + eq + 1);
  }

  bool apply(const option_info& o, std::string_view raw, std::size_t pos) {
    const std::string_view part = o.canonical;
    std::string value;
    const bool secret = o.id == opt::sentinel_password;
    if (!decode(raw, pos, part, value, secret || o.id == opt::key_prefix ? any_char : not_control,
                "control character in an option's value"))
      return false;
    const auto duration = [&](std::chrono::milliseconds& out, bool zero_ok) {
      const auto d = parse_duration(value);
      if (!d || (!zero_ok && d->count() == 0))
        return fail(pos, part,
                    zero_ok ? "bad duration: a number of milliseconds, or with a unit: 250ms, 5s"
                            : "bad duration: more than 0 milliseconds, or with a unit: 250ms, 5s");
      out = *d;
      return true;
    };
    switch (o.id) {
      case opt::db:
        return parse_db(value, pos);
      case opt::client_name:
        for (std::size_t i = 0; i < value.size(); ++i)
          if (!visible(static_cast<unsigned char>(value[i])))
            return fail(pos, part, "a client name cannot contain spaces");
        node_.client_name = std::move(value);
        return true;
      case opt::protocol:
        if (value != "2" && value != "3") return fail(pos, part, "expected 2 or 3");
        node_.protocol = value[0] - '0';
        return true;
      case opt::key_prefix:
        node_.key_prefix = std::move(value);
        return true;
      case opt::connect_timeout:
        return duration(node_.connect_timeout, false);
      case opt::request_timeout:
        return duration(node_.request_timeout, true);
      case opt::health_check_interval:
        return duration(node_.health_check_interval, true);
      case opt::reconnect_min_delay:
        return duration(node_.reconnect.min_delay, true);
      case opt::reconnect_max_delay:
        return duration(node_.reconnect.max_delay, true);
      case opt::reconnect_max_attempts: {
        const auto v = parse_count(value, UINT32_MAX);
        if (!v) return fail(pos, part, "expected a number (0: retry forever)");
        node_.reconnect.max_attempts = static_cast<std::size_t>(*v);
        return true;
      }
      case opt::ca_file:
        node_.tls.ca_file = std::move(value);
        return true;
      case opt::ca_path:
        node_.tls.ca_path = std::move(value);
        return true;
      case opt::cert_file:
        node_.tls.cert_file = std::move(value);
        return true;
      case opt::key_file:
        node_.tls.key_file = std::move(value);
        return true;
      case opt::verify: {
        const auto b = parse_bool(value);
        if (!b) return fail(pos, part, "expected true or false");
        node_.tls.verify_peer = *b;
        return true;
      }
      case opt::server_name:
        node_.tls.server_name = std::move(value);
        return true;
      case opt::role:
        if (value == "primary" || value == "master")
          role_ = sentinel_role::primary;
        else if (value == "replica" || value == "slave")
          role_ = sentinel_role::replica;
        else
          return fail(pos, part, "expected primary or replica");
        return true;
      case opt::sentinel_user:
        sentinel_user_ = std::move(value);
        sentinel_user_at_ = pos;
        return true;
      case opt::sentinel_password:
        sentinel_password_ = std::move(value);
        return true;
      case opt::sentinel_master_id:
        if (value.empty()) return fail(pos, part, "empty primary name");
        for (const char c : value)
          if (!visible(static_cast<unsigned char>(c)))
            return fail(pos, part, "space or control character in the primary's name");
        primary_name_ = std::move(value);
        return true;
      case opt::read_from:
        if (value == "primary")
          reads_ = cluster_url::read_from::primary;
        else if (value == "prefer_replica")
          reads_ = cluster_url::read_from::prefer_replica;
        else if (value == "replica")
          reads_ = cluster_url::read_from::replica;
        else if (value == "any")
          reads_ = cluster_url::read_from::any;
        else
          return fail(pos, part, "expected primary, prefer_replica, replica or any");
        return true;
      case opt::max_redirects: {
        const auto v = parse_count(value, UINT32_MAX);
        if (!v) return fail(pos, part, "expected a number");
        max_redirects_ = static_cast<std::size_t>(*v);
        return true;
      }
      case opt::refresh_interval: {
        std::chrono::milliseconds d{};
        if (!duration(d, true)) return false;
        refresh_interval_ = d;
        return true;
      }
      case opt::refused:
        break;
    }
    return true;
  }

  bool parse_fragment(std::size_t pos) {
    if (form_ != layout::sentinel_lettuce)
      return fail(pos, "fragment", "a '#' fragment is allowed only in redis-sentinel:// URLs");
    if (!primary_name_.empty())
      return fail(pos, "fragment",
                  "the primary's name is given twice (#name and sentinelMasterId)");
    if (pos + 1 == url_.size()) return fail(pos + 1, "primary name", "empty primary name");
    return decode(url_.substr(pos + 1), pos + 1, "primary name", primary_name_, visible,
                  "space or control character in the primary's name");
  }

  bool finish() {
    if (form_ != layout::unix_socket) node_.tls.enabled = tls_;
    switch (kind_of(form_)) {
      case kind::cluster:
        // One database per cluster: whatever the defaults say, SELECT would fail there.
        node_.database = 0;
        break;
      case kind::sentinel:
        if (primary_name_.empty())
          return fail(url_.size(), "primary name",
                      "the primary's name is missing: redis-sentinel://host:26379#mymaster");
        if (!sentinel_user_.empty() && sentinel_password_.empty())
          return fail(sentinel_user_at_, "sentinel_user", "sentinel_user needs sentinel_password");
        // Sentinels share the transport settings of the data connections, not their
        // credentials, database or key prefix: they have their own ACL, and no keys.
        sentinel_ = node_;
        sentinel_.username = std::move(sentinel_user_);
        sentinel_.password = std::move(sentinel_password_);
        sentinel_.database = 0;
        sentinel_.key_prefix.clear();
        break;
      default:
        break;
    }
    return true;
  }

  std::string_view url_;
  url_error& err_;
  std::size_t scheme_end_ = 0;
  layout form_ = layout::tcp;
  bool tls_ = false;
  bool db_given_ = false;
  std::uint32_t seen_ = 0;
  connection_config node_;
  connection_config sentinel_;
  std::vector<endpoint> hosts_;
  std::string primary_name_;
  sentinel_role role_ = sentinel_role::primary;
  std::string sentinel_user_, sentinel_password_;
  std::size_t sentinel_user_at_ = 0;
  std::optional<cluster_url::read_from> reads_;
  std::optional<std::size_t> max_redirects_;
  std::optional<std::chrono::milliseconds> refresh_interval_;
};

std::optional<parsed_url> parse_as(std::string_view url, url_error& err,
                                   const connection_config& defaults, kind expected) {
  url_parser p(url, err, defaults);
  if (!p.parse(expected)) return std::nullopt;
  err = {};
  return p.take();
}

template <class T>
std::optional<T> parse_one(std::string_view url, url_error& err, const connection_config& defaults,
                           kind expected) {
  auto u = parse_as(url, err, defaults, expected);
  if (!u) return std::nullopt;
  return std::get<T>(std::move(*u));
}

template <class T>
T parse_one_or_throw(std::string_view url, const connection_config& defaults, kind expected) {
  url_error err;
  auto u = parse_one<T>(url, err, defaults, expected);
  if (!u) throw bad_url(err);
  return std::move(*u);
}

// ---- printing --------------------------------------------------------------------------

constexpr std::string_view masked = "****";

void put_encoded(std::string& out, std::string_view s, std::string_view keep = {}) {
  constexpr char digits[] = "0123456789ABCDEF";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (is_unreserved(u) || keep.find(c) != std::string_view::npos) {
      out += c;
    } else {
      out += '%';
      out += digits[u >> 4];
      out += digits[u & 15];
    }
  }
}

void put_credentials(std::string& out, const connection_config& c) {
  if (c.username.empty() && c.password.empty()) return;
  put_encoded(out, c.username);
  if (!c.password.empty()) {
    out += ':';
    out += masked;
  }
  out += '@';
}

void put_host(std::string& out, std::string_view host, std::uint16_t port) {
  if (host.find(':') != std::string_view::npos) {
    out += '[';
    const std::size_t zone = std::min(host.find('%'), host.size());
    out += host.substr(0, zone);
    if (zone < host.size()) {
      out += "%25";
      put_encoded(out, host.substr(zone + 1));
    }
    out += ']';
  } else {
    put_encoded(out, host);
  }
  out += ':';
  out += std::to_string(port);
}

void put_hosts(std::string& out, const std::vector<endpoint>& hosts) {
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    if (i != 0) out += ',';
    put_host(out, hosts[i].host, hosts[i].port);
  }
}

class query_writer {
 public:
  explicit query_writer(std::string& out) : out_(out) {}
  void name(std::string_view n) {
    out_ += first_ ? '?' : '&';
    first_ = false;
    out_ += n;
    out_ += '=';
  }
  void text(std::string_view n, std::string_view v) {
    name(n);
    put_encoded(out_, v, "/:");
  }
  void number(std::string_view n, std::uint64_t v) {
    name(n);
    out_ += std::to_string(v);
  }
  void duration(std::string_view n, std::chrono::milliseconds d) {
    name(n);
    const auto ms = d.count();
    if (ms != 0 && ms % 1000 == 0) {
      out_ += std::to_string(ms / 1000);
      out_ += 's';
    } else {
      out_ += std::to_string(ms);
      if (ms != 0) out_ += "ms";
    }
  }

 private:
  std::string& out_;
  bool first_ = true;
};

const connection_config& default_config() {
  static const connection_config d;
  return d;
}

void put_options(query_writer& q, const connection_config& c) {
  const connection_config& d = default_config();
  if (!c.client_name.empty()) q.text("client_name", c.client_name);
  if (c.protocol != d.protocol) q.number("protocol", static_cast<std::uint64_t>(c.protocol));
  if (!c.key_prefix.empty()) q.text("key_prefix", c.key_prefix);
  if (c.connect_timeout != d.connect_timeout) q.duration("connect_timeout", c.connect_timeout);
  if (c.request_timeout != d.request_timeout) q.duration("request_timeout", c.request_timeout);
  if (c.health_check_interval != d.health_check_interval)
    q.duration("health_check_interval", c.health_check_interval);
  if (c.reconnect.min_delay != d.reconnect.min_delay)
    q.duration("reconnect_min_delay", c.reconnect.min_delay);
  if (c.reconnect.max_delay != d.reconnect.max_delay)
    q.duration("reconnect_max_delay", c.reconnect.max_delay);
  if (c.reconnect.max_attempts != d.reconnect.max_attempts)
    q.number("reconnect_max_attempts", c.reconnect.max_attempts);
  if (!c.tls.enabled || !c.unix_socket.empty()) return;
  if (!c.tls.ca_file.empty()) q.text("ca_file", c.tls.ca_file);
  if (!c.tls.ca_path.empty()) q.text("ca_path", c.tls.ca_path);
  if (!c.tls.cert_file.empty()) q.text("cert_file", c.tls.cert_file);
  if (!c.tls.key_file.empty()) q.text("key_file", c.tls.key_file);
  if (!c.tls.verify_peer) q.text("verify", "false");
  if (!c.tls.server_name.empty()) q.text("server_name", c.tls.server_name);
}

std::string_view read_from_name(cluster_url::read_from r) {
  switch (r) {
    case cluster_url::read_from::primary:
      return "primary";
    case cluster_url::read_from::prefer_replica:
      return "prefer_replica";
    case cluster_url::read_from::replica:
      return "replica";
    case cluster_url::read_from::any:
      return "any";
  }
  return "primary";
}

}  // namespace

std::string url_error::what() const {
  std::string s = "invalid Redis URL: ";
  s += message;
  s += " (";
  s += part;
  s += " at position ";
  s += std::to_string(position);
  s += ')';
  return s;
}

bad_url::bad_url(const url_error& e) : std::invalid_argument(e.what()), error_(e) {}

std::optional<parsed_url> parse_url(std::string_view url, url_error& err,
                                    const connection_config& defaults) {
  return parse_as(url, err, defaults, kind::any);
}

parsed_url parse_url(std::string_view url, const connection_config& defaults) {
  url_error err;
  auto u = parse_as(url, err, defaults, kind::any);
  if (!u) throw bad_url(err);
  return std::move(*u);
}

std::optional<connection_config> parse_connection_url(std::string_view url, url_error& err,
                                                      const connection_config& defaults) {
  return parse_one<connection_config>(url, err, defaults, kind::standalone);
}
connection_config parse_connection_url(std::string_view url, const connection_config& defaults) {
  return parse_one_or_throw<connection_config>(url, defaults, kind::standalone);
}
std::optional<cluster_url> parse_cluster_url(std::string_view url, url_error& err,
                                             const connection_config& defaults) {
  return parse_one<cluster_url>(url, err, defaults, kind::cluster);
}
cluster_url parse_cluster_url(std::string_view url, const connection_config& defaults) {
  return parse_one_or_throw<cluster_url>(url, defaults, kind::cluster);
}
std::optional<sentinel_config> parse_sentinel_url(std::string_view url, url_error& err,
                                                  const connection_config& defaults) {
  return parse_one<sentinel_config>(url, err, defaults, kind::sentinel);
}
sentinel_config parse_sentinel_url(std::string_view url, const connection_config& defaults) {
  return parse_one_or_throw<sentinel_config>(url, defaults, kind::sentinel);
}

std::string to_string(const connection_config& cfg) {
  std::string out;
  out.reserve(64);
  const bool unix_socket = !cfg.unix_socket.empty();
  out += unix_socket ? "unix://" : cfg.tls.enabled ? "rediss://" : "redis://";
  put_credentials(out, cfg);
  query_writer q(out);
  if (unix_socket) {
    put_encoded(out, cfg.unix_socket, "/");
    if (cfg.database != 0) q.number("db", static_cast<std::uint64_t>(cfg.database));
  } else {
    put_host(out, cfg.host, cfg.port);
    if (cfg.database != 0) {
      out += '/';
      out += std::to_string(cfg.database);
    }
  }
  put_options(q, cfg);
  return out;
}

std::string to_string(const cluster_url& u) {
  std::string out = u.node.tls.enabled ? "rediss+cluster://" : "redis+cluster://";
  put_credentials(out, u.node);
  put_hosts(out, u.seeds);
  query_writer q(out);
  put_options(q, u.node);
  if (u.reads) q.text("read_from", read_from_name(*u.reads));
  if (u.max_redirects) q.number("max_redirects", *u.max_redirects);
  if (u.refresh_interval) q.duration("refresh_interval", *u.refresh_interval);
  return out;
}

std::string to_string(const sentinel_config& s) {
  std::string out = s.node.tls.enabled ? "rediss+sentinel://" : "redis+sentinel://";
  put_credentials(out, s.node);
  put_hosts(out, s.sentinels);
  out += '/';
  put_encoded(out, s.primary_name);
  if (s.node.database != 0) {
    out += '/';
    out += std::to_string(s.node.database);
  }
  query_writer q(out);
  put_options(q, s.node);
  if (s.role == sentinel_role::replica) q.text("role", "replica");
  if (!s.sentinel.username.empty()) q.text("sentinel_user", s.sentinel.username);
  if (!s.sentinel.password.empty()) {
    q.name("sentinel_password");
    out += masked;
  }
  return out;
}

std::string to_string(const parsed_url& u) {
  return std::visit([](const auto& x) { return to_string(x); }, u);
}

}  // namespace redcoro
