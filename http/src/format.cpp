#include <redcoro/http/format.hpp>

#include <charconv>
#include <cmath>
#include <functional>
#include <map>

namespace redcoro::http {

namespace {

constexpr double ns_per_second = 1e9;

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Go's ParseFloat reads what to_chars writes (shortest round trip: "1e-05", "0.25"), and the
// text format spells the specials +Inf, -Inf and NaN.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

// `le` values in fixed notation ("0.00005", "2.5", "10"): what client libraries print, and
// what a reader of the page expects.
void append_bound(std::string& out, double seconds) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, seconds, std::chars_format::fixed);
  out.append(buf, r.ptr);
}

void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// `name="value"` pairs, joined by commas, without the braces.
class labels {
 public:
  labels() = default;
  labels& add(std::string_view name, std::string_view value) {
    if (!text_.empty()) text_ += ',';
    text_ += name;
    text_ += "=\"";
    append_label_value(text_, value);
    text_ += '"';
    return *this;
  }
  labels with(std::string_view name, std::string_view value) const {
    labels l = *this;
    l.add(name, value);
    return l;
  }
  const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;
};

// Writes families: the header of a family goes out with its first sample, so a family with
// no sample leaves no trace (and each family's samples stay together, which parsers require).
class writer {
 public:
  explicit writer(std::string& out) : out_(out) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    type_ = type;
    help_ = help;
    announced_ = false;
  }

  template <class Number>
  void sample(std::string_view suffix, const labels& l, Number value) {
    announce();
    out_ += name_;
    out_ += suffix;
    if (!l.text().empty()) {
      out_ += '{';
      out_ += l.text();
      out_ += '}';
    }
    out_ += ' ';
    append_number(out_, value);
    out_ += '\n';
  }

  // The samples of one histogram (nanoseconds in, seconds out): cumulative buckets at
  // latency_bounds, +Inf, _sum and _count.
  void histogram_samples(const labels& l, const histogram& h) {
    std::string le;
    for (double bound : latency_bounds) {
      le.clear();
      append_bound(le, bound);
      const auto ns = static_cast<std::uint64_t>(std::llround(bound * ns_per_second));
      sample("_bucket", l.with("le", le), h.count_at_or_below(ns));
    }
    sample("_bucket", l.with("le", "+Inf"), h.count());
    sample("_sum", l, h.sum() / ns_per_second);
    sample("_count", l, h.count());
  }

 private:
  void announce() {
    if (announced_) return;
    announced_ = true;
    out_ += "# HELP ";
    out_ += name_;
    out_ += ' ';
    append_help(out_, help_);
    out_ += "\n# TYPE ";
    out_ += name_;
    out_ += ' ';
    out_ += type_;
    out_ += '\n';
  }

  std::string& out_;
  std::string_view name_, type_, help_;
  bool announced_ = true;
};

// One connection (or node) of one handle: its labels and its counters. Entries of a
// deployment with the same node and role are summed, so that no series appears twice.
struct node_row {
  labels base;
  connection_metrics m;
};

std::vector<node_row> rows_of(const std::vector<handle_snapshot>& handles) {
  std::vector<node_row> rows;
  for (const auto& h : handles) {
    std::map<std::pair<std::string_view, std::string_view>, std::size_t> seen;
    for (const auto& n : h.metrics.nodes) {
      const auto [it, fresh] = seen.try_emplace({n.node, n.role}, rows.size());
      if (!fresh) {
        rows[it->second].m.merge(n.metrics);
        continue;
      }
      labels l;
      l.add("handle", h.name).add("node", n.node).add("role", n.role);
      rows.push_back({std::move(l), n.metrics});
    }
  }
  return rows;
}

using counter_of = std::function<std::uint64_t(const connection_metrics&)>;

void node_family(writer& w, const std::vector<node_row>& rows, std::string_view name,
                 std::string_view type, std::string_view help, const counter_of& value) {
  w.family(name, type, help);
  for (const auto& r : rows)
    w.sample("", r.base, value(r.m));
}

void handle_families(writer& w, const std::vector<handle_snapshot>& handles) {
  const auto rows = rows_of(handles);

  node_family(w, rows, "redcoro_requests_total", "counter",
              "Requests started (async_exec calls), refused ones included.",
              [](const connection_metrics& m) { return m.requests; });

  w.family("redcoro_requests_completed_total", "counter",
           "Requests completed, by outcome (replied, timeout, connection_lost, cancelled, "
           "refused, protocol_error).");
  for (const auto& r : rows)
    for (std::size_t o = 0; o < request_outcomes; ++o) {
      const auto outcome = static_cast<request_outcome>(o);
      w.sample("", r.base.with("outcome", outcome_name(outcome)), r.m.completed_with(outcome));
    }

  w.family("redcoro_server_errors_total", "counter",
           "Error replies of the server, by their code (the first word: ERR, WRONGTYPE, ...).");
  for (const auto& r : rows)
    for (const auto& [code, n] : r.m.server_errors)
      w.sample("", r.base.with("code", code), n);

  node_family(w, rows, "redcoro_written_bytes_total", "counter", "Bytes written to the server.",
              [](const connection_metrics& m) { return m.bytes_written; });
  node_family(w, rows, "redcoro_read_bytes_total", "counter", "Bytes read from the server.",
              [](const connection_metrics& m) { return m.bytes_read; });
  node_family(w, rows, "redcoro_connects_total", "counter",
              "Handshakes completed: the first connection and every reconnect.",
              [](const connection_metrics& m) { return m.connects; });
  node_family(w, rows, "redcoro_disconnects_total", "counter",
              "Sessions that ended (lost, dropped, replaced).",
              [](const connection_metrics& m) { return m.disconnects; });
  node_family(w, rows, "redcoro_pushes_total", "counter",
              "Push messages received (pub/sub messages, invalidations).",
              [](const connection_metrics& m) { return m.pushes; });
  node_family(w, rows, "redcoro_queued_requests", "gauge", "Requests waiting to be written.",
              [](const connection_metrics& m) { return m.queued; });
  node_family(w, rows, "redcoro_in_flight_requests", "gauge",
              "Requests written and not answered yet.",
              [](const connection_metrics& m) { return m.in_flight; });
  node_family(w, rows, "redcoro_connected", "gauge", "1 while a session is up (handshake done).",
              [](const connection_metrics& m) { return std::uint64_t{m.connected ? 1u : 0u}; });

  w.family("redcoro_request_duration_seconds", "histogram",
           "Latency of replied requests, from the call to the last reply.");
  for (const auto& r : rows)
    w.histogram_samples(r.base, r.m.latency);

  // By command, summed over the nodes of a handle: commands times handles series, not
  // commands times nodes (the node's view is redcoro_request_duration_seconds).
  w.family("redcoro_command_duration_seconds", "histogram",
           "Latency of replied requests by their first command (PIPELINE, MULTI, OTHER for the "
           "rest), summed over the nodes of a handle.");
  for (const auto& h : handles) {
    std::map<std::string_view, histogram> by_command;
    for (const auto& n : h.metrics.nodes)
      for (const auto& c : n.metrics.by_command)
        by_command[c.command].merge(c.latency);
    for (const auto& [command, hist] : by_command) {
      labels l;
      l.add("handle", h.name).add("command", command);
      w.histogram_samples(l, hist);
    }
  }

  w.family("redcoro_handle_info", "gauge",
           "1 for every registered handle; `kind` says what it talks to (single, pooled, "
           "cluster, sentinel).");
  for (const auto& h : handles) {
    labels l;
    l.add("handle", h.name).add("kind", to_string(h.metrics.kind));
    w.sample("", l, std::uint64_t{1});
  }

  // Pool gauges for the deployments that have a pool; cluster figures for clusters only, so
  // that an alert on slots_covered does not fire for a single server.
  using deployment_value = std::function<std::uint64_t(const deployment_metrics&)>;
  const auto deployment_family = [&](std::string_view name, std::string_view type,
                                     std::string_view help, bool (*applies)(deployment),
                                     const deployment_value& value) {
    w.family(name, type, help);
    for (const auto& h : handles) {
      if (!applies(h.metrics.kind)) continue;
      labels l;
      l.add("handle", h.name);
      w.sample("", l, value(h.metrics));
    }
  };
  const auto pooled = +[](deployment d) { return d != deployment::single; };
  const auto clustered = +[](deployment d) { return d == deployment::cluster; };
  deployment_family("redcoro_pool_open_connections", "gauge",
                    "Dedicated connections open in the pool.", pooled,
                    [](const deployment_metrics& d) { return d.pool_open; });
  deployment_family("redcoro_pool_leased_connections", "gauge",
                    "Dedicated connections lent out now.", pooled,
                    [](const deployment_metrics& d) { return d.pool_leased; });
  deployment_family("redcoro_pool_waiting_callers", "gauge",
                    "Callers waiting for a dedicated connection.", pooled,
                    [](const deployment_metrics& d) { return d.pool_waiting; });

  w.family("redcoro_cluster_redirects_total", "counter",
           "Cluster redirects followed, by kind (moved, ask).");
  for (const auto& h : handles) {
    if (h.metrics.kind != deployment::cluster) continue;
    labels l;
    l.add("handle", h.name);
    w.sample("", l.with("redirect", "moved"), h.metrics.moved);
    w.sample("", l.with("redirect", "ask"), h.metrics.ask);
  }
  deployment_family("redcoro_cluster_retries_total", "counter",
                    "Cluster requests sent again (after a redirect or a lost node).", clustered,
                    [](const deployment_metrics& d) { return d.retries; });
  deployment_family("redcoro_cluster_topology_refreshes_total", "counter",
                    "Cluster topology refreshes.", clustered,
                    [](const deployment_metrics& d) { return d.refreshes; });
  deployment_family("redcoro_cluster_slots_covered", "gauge",
                    "Hash slots with an owner in the topology (16384 when the map is whole).",
                    clustered, [](const deployment_metrics& d) { return d.slots_covered; });
}

// The families of one kind of named source (caches, client-side caches, subscribers): one
// sample per source, labelled `label` with its name, read from its figures (`figures`).
template <class Snapshot, class Figures>
class named_families {
 public:
  using value_of = std::function<std::uint64_t(const Figures&)>;
  named_families(writer& w, const std::vector<Snapshot>& sources, std::string_view label,
                 Figures Snapshot::*figures)
      : w_(w), sources_(sources), label_(label), figures_(figures) {}

  void operator()(std::string_view name, std::string_view type, std::string_view help,
                  const value_of& value) const {
    w_.family(name, type, help);
    for (const auto& s : sources_) {
      labels l;
      l.add(label_, s.name);
      w_.sample("", l, value(s.*figures_));
    }
  }

 private:
  writer& w_;
  const std::vector<Snapshot>& sources_;
  std::string_view label_;
  Figures Snapshot::*figures_;
};

void cache_families(writer& w, const std::vector<cache_snapshot>& caches) {
  const named_families family(w, caches, "cache", &cache_snapshot::counters);
  using m = cache::cache_metrics;
  family("redcoro_cache_hits_total", "counter",
         "Keys found (and decoded) by get, get_many, get_or_load.",
         [](const m& c) { return c.hits; });
  family("redcoro_cache_misses_total", "counter",
         "Keys not found (or not decodable in get_or_load).", [](const m& c) { return c.misses; });
  family("redcoro_cache_sets_total", "counter",
         "Values written (set, set_if_absent that set, loads).", [](const m& c) { return c.sets; });
  family("redcoro_cache_deletes_total", "counter", "Keys removed by del and clear.",
         [](const m& c) { return c.deletes; });
  family("redcoro_cache_loads_total", "counter", "Loader calls of get_or_load.",
         [](const m& c) { return c.loads; });
  family("redcoro_cache_load_errors_total", "counter", "Loader calls that threw.",
         [](const m& c) { return c.load_errors; });
  family("redcoro_cache_errors_total", "counter",
         "Calls that failed: transport, server or codec errors.",
         [](const m& c) { return c.errors; });
  family("redcoro_cache_invalidated_keys_total", "counter",
         "Keys removed by invalidate_* and clear.", [](const m& c) { return c.invalidated; });
  family("redcoro_cache_early_refreshes_total", "counter",
         "Early refreshes started (early_refresh).", [](const m& c) { return c.refreshes; });

  w.family("redcoro_cache_get_duration_seconds", "histogram",
           "Latency of gets (recorded with cache_options::record_latency or an observer).");
  for (const auto& c : caches) {
    labels l;
    l.add("cache", c.name);
    w.histogram_samples(l, c.latency.gets);
  }
  w.family("redcoro_cache_load_duration_seconds", "histogram",
           "Latency of the loader calls of get_or_load.");
  for (const auto& c : caches) {
    labels l;
    l.add("cache", c.name);
    w.histogram_samples(l, c.latency.loads);
  }
}

void client_cache_families(writer& w, const std::vector<client_cache_snapshot>& caches) {
  const named_families family(w, caches, "client_cache", &client_cache_snapshot::stats);
  using s = tracking_cache_stats;
  family("redcoro_client_cache_hits_total", "counter", "Replies served from process memory.",
         [](const s& c) { return c.hits; });
  family("redcoro_client_cache_misses_total", "counter", "Cacheable reads sent to the server.",
         [](const s& c) { return c.misses; });
  family("redcoro_client_cache_shared_misses_total", "counter",
         "Reads that waited for another caller's identical miss.",
         [](const s& c) { return c.shared_misses; });
  family("redcoro_client_cache_uncached_total", "counter",
         "Requests passed through: not cacheable, or caching unavailable.",
         [](const s& c) { return c.uncached; });
  family("redcoro_client_cache_invalidations_total", "counter",
         "Cached replies dropped because the server said their key changed.",
         [](const s& c) { return c.invalidations; });
  family("redcoro_client_cache_flushes_total", "counter",
         "Times everything was dropped (a disconnect, FLUSHALL, clear()).",
         [](const s& c) { return c.flushes; });
  family("redcoro_client_cache_evictions_total", "counter", "Replies dropped for room (max_bytes).",
         [](const s& c) { return c.evictions; });
  family("redcoro_client_cache_expirations_total", "counter",
         "Replies dropped because their TTL or max_ttl passed.",
         [](const s& c) { return c.expirations; });
  family("redcoro_client_cache_not_stored_total", "counter",
         "Replies not kept: their key changed while the read was in flight.",
         [](const s& c) { return c.not_stored; });
  family("redcoro_client_cache_entries", "gauge", "Replies held now.",
         [](const s& c) { return c.entries; });
  family("redcoro_client_cache_bytes", "gauge",
         "Bytes the held replies take (max_bytes bounds it).", [](const s& c) { return c.bytes; });
  family("redcoro_client_cache_available", "gauge",
         "1 while the sessions that answer reads track keys; 0: every read goes to the server.",
         [](const s& c) { return c.available ? 1 : 0; });
}

void subscriber_families(writer& w, const std::vector<subscriber_snapshot>& subscribers) {
  const named_families family(w, subscribers, "subscriber", &subscriber_snapshot::stats);
  using s = subscriber_stats;
  family("redcoro_subscriber_messages_total", "counter",
         "Messages received (confirmations not counted), dropped ones included.",
         [](const s& c) { return c.messages; });
  family("redcoro_subscriber_dropped_messages_total", "counter",
         "Messages dropped by the overflow policy (drop_oldest, disconnect).",
         [](const s& c) { return c.dropped; });
  family("redcoro_subscriber_overflow_disconnects_total", "counter",
         "Connections dropped because the receive buffer was full (overflow_policy::disconnect).",
         [](const s& c) { return c.overflow_disconnects; });
  family("redcoro_subscriber_buffered_messages", "gauge",
         "Messages received and waiting for async_receive.", [](const s& c) { return c.buffered; });
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void append_json_field(std::string& out, std::string_view key, std::string_view value) {
  append_json_string(out, key);
  out += ':';
  append_json_string(out, value);
}

void append_json_field(std::string& out, std::string_view key, bool value) {
  append_json_string(out, key);
  out += value ? ":true" : ":false";
}

void append_json_field(std::string& out, std::string_view key, std::uint64_t value) {
  append_json_string(out, key);
  out += ':';
  append_number(out, value);
}

std::uint64_t micros(std::chrono::microseconds d) {
  return d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
}

}  // namespace

void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

std::string to_prometheus(const std::vector<handle_snapshot>& handles,
                          const std::vector<cache_snapshot>& caches,
                          const std::vector<client_cache_snapshot>& client_caches,
                          const std::vector<subscriber_snapshot>& subscribers) {
  std::string out;
  writer w(out);
  handle_families(w, handles);
  cache_families(w, caches);
  client_cache_families(w, client_caches);
  subscriber_families(w, subscribers);
  return out;
}

std::string to_health_json(const std::vector<handle_health>& handles) {
  bool all = true;
  for (const auto& h : handles)
    all = all && h.healthy();
  std::string out = "{";
  append_json_field(out, "healthy", all);
  out += ",\"handles\":[";
  bool first = true;
  for (const auto& h : handles) {
    if (!first) out += ',';
    first = false;
    const auto& r = h.report;
    out += '{';
    append_json_field(out, "name", h.name);
    out += ',';
    append_json_field(out, "kind", to_string(r.kind));
    out += ',';
    append_json_field(out, "healthy", h.healthy());
    out += ',';
    append_json_field(out, "reason", h.error ? "no report: " + h.error.message() : r.reason);
    out += ',';
    append_json_field(out, "role", r.role);
    out += ',';
    append_json_field(out, "server_version", r.server_version);
    out += ',';
    append_json_field(out, "address", r.address);
    out += ',';
    append_json_field(out, "round_trip_us", micros(r.round_trip));
    if (r.kind == deployment::cluster) {
      out += ',';
      append_json_field(out, "cluster_state", r.cluster_state);
      out += ',';
      append_json_field(out, "all_slots_covered", r.all_slots_covered);
    }
    if (!r.nodes.empty()) {
      out += ",\"nodes\":[";
      bool first_node = true;
      for (const auto& n : r.nodes) {
        if (!first_node) out += ',';
        first_node = false;
        out += '{';
        append_json_field(out, "address", n.address);
        out += ',';
        append_json_field(out, "reachable", n.reachable);
        out += ',';
        append_json_field(out, "role", n.role);
        out += ',';
        append_json_field(out, "round_trip_us", micros(n.round_trip));
        if (!n.error.empty()) {
          out += ',';
          append_json_field(out, "error", n.error);
        }
        out += '}';
      }
      out += ']';
    }
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace redcoro::http
