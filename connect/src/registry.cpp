#include <redcoro/connect/registry.hpp>

#include <simdjson.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

namespace redcoro {

std::string registry_error::what() const {
  std::string out = "connection file";
  if (!entry.empty()) out += ": entry '" + entry + "'";
  if (!field.empty()) out += ", field '" + field + "'";
  return out + ": " + message;
}

bad_registry::bad_registry(registry_error e)
    : std::invalid_argument(e.what()), error_(std::move(e)) {}

namespace {

namespace dom = simdjson::dom;

// Reads one entry; every failure names the entry and the field.
class entry_reader {
 public:
  entry_reader(std::string name, const connection_config& defaults, const environment& env)
      : name_(std::move(name)), defaults_(defaults), env_(env) {}

  [[noreturn]] void fail(std::string field, std::string message) const {
    throw bad_registry(registry_error{name_, std::move(field), std::move(message)});
  }

  // `${NAME}` replaced by the variable's value, `$$` by `$`.
  std::string expand(std::string_view field, std::string_view text) const {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '$') {
        out += text[i];
        continue;
      }
      if (i + 1 < text.size() && text[i + 1] == '$') {
        out += '$';
        ++i;
        continue;
      }
      if (i + 1 >= text.size() || text[i + 1] != '{')
        fail(std::string(field), "a '$' must start ${NAME} (write $$ for a dollar sign)");
      const std::size_t end = text.find('}', i + 2);
      if (end == std::string_view::npos) fail(std::string(field), "${ without a closing }");
      const std::string_view var = text.substr(i + 2, end - i - 2);
      if (var.empty()) fail(std::string(field), "${} names no variable");
      auto value = env_ ? env_(var) : getenv_value(var);
      if (!value)
        fail(std::string(field), "environment variable " + std::string(var) + " is not set");
      out += *value;
      i = end;
    }
    return out;
  }

  std::string string_of(std::string_view field, dom::element v) const {
    std::string_view s;
    if (v.get_string().get(s)) fail(std::string(field), "must be a string");
    return expand(field, s);
  }

  // A number, or a string holding one (so that it can come from the environment).
  std::int64_t integer_of(std::string_view field, dom::element v, std::int64_t min,
                          std::int64_t max) const {
    std::int64_t n = 0;
    if (v.is_string()) {
      const std::string s = string_of(field, v);
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec != std::errc() || p != s.data() + s.size())
        fail(std::string(field), "must be an integer");
    } else if (v.get_int64().get(n)) {
      fail(std::string(field), "must be an integer");
    }
    if (n < min || n > max)
      fail(std::string(field),
           "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return n;
  }

  bool bool_of(std::string_view field, dom::element v) const {
    bool b = false;
    if (v.get_bool().get(b)) fail(std::string(field), "must be true or false");
    return b;
  }

  std::vector<endpoint> hosts_of(std::string_view field, dom::element v) const {
    dom::array a;
    if (v.get_array().get(a)) fail(std::string(field), "must be an array of \"host:port\"");
    std::vector<endpoint> out;
    for (dom::element e : a) {
      const std::string text = string_of(field, e);
      const std::size_t colon = text.rfind(':');
      if (colon == std::string::npos || colon == 0)
        fail(std::string(field), "each host must be written host:port");
      std::string host = text.substr(0, colon);
      if (host.size() > 1 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
      unsigned port = 0;
      auto [p, ec] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), port);
      if (ec != std::errc() || p != text.data() + text.size() || port == 0 || port > 65535)
        fail(std::string(field), "each host must be written host:port, with a port 1-65535");
      out.push_back(endpoint{std::move(host), static_cast<std::uint16_t>(port)});
    }
    if (out.empty()) fail(std::string(field), "names no host");
    return out;
  }

  handle_config from_url(std::string_view field, const std::string& url) const {
    try {
      return make_handle_config(url, defaults_);
    } catch (const bad_url& e) {
      // The URL's own error names the part and position, never the text.
      fail(std::string(field), e.what());
    }
  }

  handle_config read(dom::element v) const {
    if (v.is_string()) return from_url("url", string_of("url", v));
    dom::object o;
    if (v.get_object().get(o)) fail("", "must be a URL or an object of fields");

    // What kind of deployment it is, first.
    handle_config cfg = defaults_;
    dom::element kind;
    if (!o["url"].get(kind)) {
      cfg = from_url("url", string_of("url", kind));
    } else if (!o["cluster"].get(kind)) {
      cluster_config c;
      for (auto& e : hosts_of("cluster", kind))
        c.seeds.push_back(node_address{e.host, e.port});
      c.node = defaults_;
      cfg = std::move(c);
    } else if (!o["sentinels"].get(kind)) {
      sentinel_config s;
      s.sentinels = hosts_of("sentinels", kind);
      s.node = defaults_;
      s.sentinel = defaults_;
      dom::element name;
      if (o["primary_name"].get(name)) fail("primary_name", "a Sentinel entry needs it");
      s.primary_name = string_of("primary_name", name);
      cfg = std::move(s);
    }
    const int kinds = !o["url"].error() + !o["cluster"].error() + !o["sentinels"].error();
    if (kinds > 1) fail("", "give one of url, cluster, sentinels");

    for (auto [key, value] : o) {
      const std::string_view k = key;
      if (k == "url" || k == "cluster" || k == "sentinels" || k == "primary_name") continue;
      apply(cfg, k, value);
    }
    return cfg;
  }

 private:
  // The settings every kind has: the node settings of a cluster or Sentinel entry.
  static connection_config& node_of(handle_config& cfg) {
    if (auto* c = std::get_if<cluster_config>(&cfg)) return c->node;
    if (auto* s = std::get_if<sentinel_config>(&cfg)) return s->node;
    return std::get<connection_config>(cfg);
  }

  void apply(handle_config& cfg, std::string_view k, dom::element v) const {
    connection_config& c = node_of(cfg);
    const bool server = std::holds_alternative<connection_config>(cfg);
    const std::string field(k);
    constexpr auto int_max = std::numeric_limits<int>::max();
    if (k == "host" || k == "port" || k == "unix_socket") {
      if (!server) fail(field, "a cluster or Sentinel entry names its servers in its list");
      if (k == "host")
        c.host = string_of(k, v);
      else if (k == "port")
        c.port = static_cast<std::uint16_t>(integer_of(k, v, 1, 65535));
      else
        c.unix_socket = string_of(k, v);
    } else if (k == "username") {
      c.username = string_of(k, v);
    } else if (k == "password") {
      c.password = string_of(k, v);
    } else if (k == "database") {
      c.database = static_cast<int>(integer_of(k, v, 0, int_max));
    } else if (k == "key_prefix") {
      c.key_prefix = string_of(k, v);
    } else if (k == "client_name") {
      c.client_name = string_of(k, v);
    } else if (k == "pool_size") {
      c.pool_size = static_cast<std::size_t>(integer_of(k, v, 0, 1024));
    } else if (k == "protocol") {
      c.protocol = static_cast<int>(integer_of(k, v, 2, 3));
    } else if (k == "connect_timeout_ms") {
      c.connect_timeout = std::chrono::milliseconds(integer_of(k, v, 1, int_max));
    } else if (k == "request_timeout_ms") {
      c.request_timeout = std::chrono::milliseconds(integer_of(k, v, 0, int_max));
    } else if (k == "tls") {
      c.tls.enabled = bool_of(k, v);
    } else if (k == "tls_ca_file") {
      c.tls.ca_file = string_of(k, v);
    } else if (k == "tls_server_name") {
      c.tls.server_name = string_of(k, v);
    } else if (k == "tls_verify") {
      c.tls.verify_peer = bool_of(k, v);
    } else if (k == "sentinel_password" || k == "sentinel_username") {
      auto* s = std::get_if<sentinel_config>(&cfg);
      if (!s) fail(field, "only a Sentinel entry has it");
      (k == "sentinel_password" ? s->sentinel.password : s->sentinel.username) = string_of(k, v);
    } else if (k == "role") {
      auto* s = std::get_if<sentinel_config>(&cfg);
      if (!s) fail(field, "only a Sentinel entry has it");
      const std::string r = string_of(k, v);
      if (r == "primary")
        s->role = sentinel_role::primary;
      else if (r == "replica")
        s->role = sentinel_role::replica;
      else
        fail(field, "must be \"primary\" or \"replica\"");
    } else {
      fail(field, "unknown field");
    }
  }

  static std::optional<std::string> getenv_value(std::string_view name) {
    const std::string n(name);
    const char* v = std::getenv(n.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  }

  std::string name_;
  const connection_config& defaults_;
  const environment& env_;
};

}  // namespace

connection_file parse_connection_file(std::string_view json, const connection_config& defaults,
                                      const environment& env) {
  auto whole = [](std::string field, std::string message) {
    throw bad_registry(registry_error{{}, std::move(field), std::move(message)});
  };
  dom::parser parser;
  const simdjson::padded_string text(json);
  dom::element doc;
  if (auto e = parser.parse(text).get(doc))
    whole("", std::string("not JSON: ") + simdjson::error_message(e));
  dom::object top;
  if (doc.get_object().get(top)) whole("", "must be an object with \"connections\"");
  connection_file out;
  for (auto [key, value] : top) {
    const std::string_view k = key;
    if (k == "default") {
      std::string_view d;
      if (value.get_string().get(d)) whole("default", "must be a string");
      out.default_name = std::string(d);
    } else if (k == "connections") {
      dom::object entries;
      if (value.get_object().get(entries)) whole("connections", "must be an object of names");
      for (auto [name, entry] : entries) {
        entry_reader reader(std::string(name), defaults, env);
        out.connections.emplace(std::string(name), reader.read(entry));
      }
    } else {
      whole(std::string(k), "unknown field");
    }
  }
  if (out.connections.empty()) whole("connections", "lists no connection");
  if (!out.default_name.empty() && !out.connections.contains(out.default_name))
    whole("default", "names no connection of the file");
  return out;
}

connections connections::from_json(executor_type ex, std::string_view json,
                                   const connection_config& defaults, const environment& env) {
  auto file = parse_connection_file(json, defaults, env);
  connections out(std::move(ex));
  for (auto& [name, cfg] : file.connections)
    out.make(name, std::move(cfg));
  if (!file.default_name.empty()) out.set_default(std::move(file.default_name));
  return out;
}

connections connections::from_file(executor_type ex, const std::string& path,
                                   const connection_config& defaults, const environment& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw bad_registry(registry_error{{}, {}, "cannot read " + path});
  std::ostringstream text;
  text << in.rdbuf();
  return from_json(std::move(ex), text.str(), defaults, env);
}

handle connections::get(std::string_view name) const {
  auto it = handles_.find(name);
  if (it == handles_.end())
    throw std::out_of_range("no connection named '" + std::string(name) + "'");
  return it->second;
}

std::optional<handle> connections::find(std::string_view name) const {
  auto it = handles_.find(name);
  if (it == handles_.end()) return std::nullopt;
  return it->second;
}

bool connections::has(std::string_view name) const {
  return handles_.find(name) != handles_.end();
}

std::vector<std::string> connections::list() const {
  std::vector<std::string> out;
  for (const auto& [name, h] : handles_)
    out.push_back(name);
  return out;
}

handle connections::make(std::string name, handle_config cfg) {
  if (has(name)) throw std::invalid_argument("a connection named '" + name + "' exists");
  handle h(ex_, std::move(cfg));
  handles_.emplace(std::move(name), h);
  return h;
}

handle connections::make(std::string name, std::string_view url,
                         const connection_config& defaults) {
  return make(std::move(name), make_handle_config(url, defaults));
}

void connections::add(std::string name, handle h) {
  if (has(name)) throw std::invalid_argument("a connection named '" + name + "' exists");
  handles_.emplace(std::move(name), std::move(h));
}

bool connections::remove(std::string_view name) {
  auto it = handles_.find(name);
  if (it == handles_.end()) return false;
  handles_.erase(it);
  return true;
}

void connections::close_all() {
  for (auto& [name, h] : handles_)
    h.close();
}

}  // namespace redcoro
