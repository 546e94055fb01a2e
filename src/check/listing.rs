//! `exwatch config check`'s listing of a valid config: what would be
//! polled and streamed, one line each.

use crate::config::Config;

/// The summary line and one line per REST endpoint and stream connection
/// (`  binance/ticker: GET … every 1s (weight 2, timeout 2s)`,
/// `  binance/binance-ws: WebSocket … (ticker BTCUSDT, book BTCUSDT; silent after 30s)`),
/// newline-terminated. `file`: the config's path as shown.
pub fn config_listing(file: &str, cfg: &Config) -> String {
    let eps = cfg.endpoints();
    let streams = cfg.streams();
    let subs: usize = streams.iter().map(|s| s.spec.subscriptions.len()).sum();
    let with_streams = if streams.is_empty() {
        String::new()
    } else {
        format!(
            ", {} stream connection(s), {subs} subscription(s)",
            streams.len()
        )
    };
    let mut out = format!(
        "{file}: ok ({} exchange(s), {} endpoint(s){with_streams})\n",
        cfg.exchanges.len(),
        eps.len()
    );
    for ep in eps {
        out.push_str(&format!(
            "  {}/{}: GET {} every {:?} (weight {}, timeout {:?})\n",
            ep.exchange, ep.endpoint, ep.url, ep.interval, ep.limit.weight, ep.timeout
        ));
    }
    for s in streams {
        let feeds: Vec<String> = (s.spec.subscriptions.iter())
            .map(|x| {
                let feed = crate::stream::watch::feed_name(x.feed);
                format!("{feed} {}", x.symbol)
            })
            .collect();
        out.push_str(&format!(
            "  {}/{}: WebSocket {} ({}; silent after {:?}, dead after {:?})\n",
            s.exchange,
            s.spec.name,
            s.spec.url,
            feeds.join(", "),
            s.silent_after,
            s.dead_after
        ));
    }
    out
}
