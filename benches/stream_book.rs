//! Book messages parsed, applied and integrity-checked per second on one
//! core, per exchange shape (issue #16 item 7: at least 500,000/s for the
//! sequence-checked shapes, 100,000/s for Kraken's checksum).
//!
//! `cargo bench --bench stream_book`. Each iteration takes a book synced to
//! its snapshot (cloned outside the timing) and feeds it `FRAMES`
//! pre-generated text frames of the exchange's shape: text → `parse_into` →
//! `LocalBook::apply`, every verdict checked. Throughput is in frames
//! (book messages); multiply by the levels per frame in the name for level
//! updates. Sizes: Binance `@depth@100ms` 20 level changes per event over a
//! 1,000-level snapshot; Bybit `orderbook.50` 8 per delta; OKX `books` 20 per
//! update over 400 levels (checksum 0, as in production), and 1-3 per update
//! for a quiet symbol (the per-message cost); Coinbase
//! `level2_batch` 5 per batch; Kraken `book` depth 10 with 1-3 per update
//! and a checksum on each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use exwatch::model::ExchangeKind;
use exwatch::stream::{
    self, BookKind, BookMsg, BookSeq, Dec, Level, LocalBook, OrderBook, Rule, Side, StreamMsg,
    Verdict, checksum,
};

const FRAMES: usize = 2_000;

/// xorshift64*: deterministic frames without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Prices in ticks of 0.1 around 27,000.0; the best bid is 270,000 ticks.
const MID: u64 = 270_000;

fn price(ticks: u64) -> Dec {
    Dec::new(ticks, 1).unwrap()
}

/// One level change near the top (most within 20 ticks, some deeper), a
/// fifth of them deletions.
fn change(rng: &mut Rng, depth: u64) -> (Side, Level) {
    let side = if rng.below(2) == 0 {
        Side::Buy
    } else {
        Side::Sell
    };
    let off = if rng.below(4) == 0 {
        rng.below(depth)
    } else {
        rng.below(20)
    };
    let ticks = match side {
        Side::Buy => MID - off,
        Side::Sell => MID + 1 + off,
    };
    let qty = if rng.below(5) == 0 {
        Dec::ZERO
    } else {
        Dec::new(1 + rng.below(5_000_000), 8).unwrap()
    };
    (side, Level::new(price(ticks), qty))
}

fn full_book(depth: u64, rng: &mut Rng) -> (Vec<Level>, Vec<Level>) {
    let bids = (0..depth)
        .map(|i| {
            Level::new(
                price(MID - i),
                Dec::new(1 + rng.below(5_000_000), 8).unwrap(),
            )
        })
        .collect();
    let asks = (0..depth)
        .map(|i| {
            Level::new(
                price(MID + 1 + i),
                Dec::new(1 + rng.below(5_000_000), 8).unwrap(),
            )
        })
        .collect();
    (bids, asks)
}

fn split(changes: &[(Side, Level)]) -> (Vec<Level>, Vec<Level>) {
    let bids = changes
        .iter()
        .filter(|c| c.0 == Side::Buy)
        .map(|c| c.1)
        .collect();
    let asks = changes
        .iter()
        .filter(|c| c.0 == Side::Sell)
        .map(|c| c.1)
        .collect();
    (bids, asks)
}

/// `["27000.0","0.01234000"]`-style arrays with a fixed number of decimals,
/// as Binance sends them.
fn arr(levels: &[Level], pdp: usize, qdp: usize) -> String {
    levels
        .iter()
        .map(|l| {
            format!(
                r#"["{:.pdp$}","{:.qdp$}"]"#,
                l.price.to_f64(),
                l.qty.to_f64()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

struct Shape {
    name: String,
    exchange: ExchangeKind,
    synced: LocalBook,
    frames: Vec<String>,
}

fn snapshot_msg(bids: Vec<Level>, asks: Vec<Level>, seq: BookSeq) -> BookMsg {
    BookMsg {
        channel: "bench".into(),
        symbol: "BTCUSDT".into(),
        kind: BookKind::Snapshot,
        bids,
        asks,
        seq,
        event_time_ms: None,
    }
}

fn binance() -> Shape {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (bids, asks) = full_book(1000, &mut rng);
    let mut synced = LocalBook::binance();
    let v = synced.apply(&snapshot_msg(
        bids,
        asks,
        BookSeq::BinanceRest {
            last_update_id: 1_000,
        },
    ));
    assert_eq!(v, Verdict::Snapshot);
    let mut u = 1_000u64;
    let frames = (0..FRAMES)
        .map(|_| {
            let ch: Vec<_> = (0..20).map(|_| change(&mut rng, 1000)).collect();
            let (b, a) = split(&ch);
            let first = u + 1;
            u += 1 + rng.below(3);
            format!(
                r#"{{"e":"depthUpdate","E":1672515782136,"s":"BTCUSDT","U":{first},"u":{u},"b":[{}],"a":[{}]}}"#,
                arr(&b, 8, 8),
                arr(&a, 8, 8)
            )
        })
        .collect();
    Shape {
        name: "binance_depth_20lv".into(),
        exchange: ExchangeKind::Binance,
        synced,
        frames,
    }
}

fn bybit() -> Shape {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let (bids, asks) = full_book(50, &mut rng);
    let mut synced = LocalBook::new(Rule::Bybit);
    let v = synced.apply(&snapshot_msg(
        bids,
        asks,
        BookSeq::Bybit {
            update_id: 1,
            seq: 1,
        },
    ));
    assert_eq!(v, Verdict::Snapshot);
    let frames = (0..FRAMES)
        .map(|i| {
            let ch: Vec<_> = (0..8).map(|_| change(&mut rng, 50)).collect();
            let (b, a) = split(&ch);
            let u = i + 2;
            format!(
                r#"{{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1672304484978,"data":{{"s":"BTCUSDT","b":[{}],"a":[{}],"u":{u},"seq":{}}},"cts":1672304484976}}"#,
                arr(&b, 2, 6),
                arr(&a, 2, 6),
                7_961_638_724u64 + i as u64
            )
        })
        .collect();
    Shape {
        name: "bybit_orderbook50_8lv".into(),
        exchange: ExchangeKind::Bybit,
        synced,
        frames,
    }
}

/// OKX `books` with `per_frame` changes per update (`None`: 1-3).
fn okx(per_frame: Option<u64>, name: &str) -> Shape {
    let mut rng = Rng(0x8CB9_2BA7_2F3D_8DD7);
    let (bids, asks) = full_book(400, &mut rng);
    let mut synced = LocalBook::new(Rule::Okx);
    let snap = BookSeq::Okx {
        seq_id: 100,
        prev_seq_id: -1,
        checksum: 0,
    };
    assert_eq!(
        synced.apply(&snapshot_msg(bids, asks, snap)),
        Verdict::Snapshot
    );
    let mut seq = 100i64;
    let okx_arr = |levels: &[Level]| {
        levels
            .iter()
            .map(|l| {
                format!(
                    r#"["{}","{}","0","{}"]"#,
                    l.price,
                    l.qty,
                    1 + l.qty.mantissa() % 9
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let frames = (0..FRAMES)
        .map(|_| {
            let n = per_frame.unwrap_or_else(|| 1 + rng.below(3));
            let ch: Vec<_> = (0..n).map(|_| change(&mut rng, 400)).collect();
            let (b, a) = split(&ch);
            let prev = seq;
            seq += 1 + rng.below(90) as i64;
            format!(
                r#"{{"arg":{{"channel":"books","instId":"BTC-USDT"}},"action":"update","data":[{{"asks":[{}],"bids":[{}],"ts":"1597026383085","checksum":0,"prevSeqId":{prev},"seqId":{seq}}}]}}"#,
                okx_arr(&a),
                okx_arr(&b)
            )
        })
        .collect();
    Shape {
        name: name.into(),
        exchange: ExchangeKind::Okx,
        synced,
        frames,
    }
}

fn coinbase() -> Shape {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (bids, asks) = full_book(500, &mut rng);
    let mut synced = LocalBook::new(Rule::Coinbase);
    assert_eq!(
        synced.apply(&snapshot_msg(bids, asks, BookSeq::None)),
        Verdict::Snapshot
    );
    let frames = (0..FRAMES)
        .map(|_| {
            let changes = (0..5)
                .map(|_| {
                    let (side, l) = change(&mut rng, 500);
                    let s = if side == Side::Buy { "buy" } else { "sell" };
                    format!(r#"["{s}","{:.2}","{:.8}"]"#, l.price.to_f64(), l.qty.to_f64())
                })
                .collect::<Vec<_>>()
                .join(",");
            format!(
                r#"{{"type":"l2update","product_id":"BTC-USD","changes":[{changes}],"time":"2022-08-04T15:25:05.010758Z"}}"#
            )
        })
        .collect();
    Shape {
        name: "coinbase_l2batch_5lv".into(),
        exchange: ExchangeKind::Coinbase,
        synced,
        frames,
    }
}

fn kraken() -> Shape {
    const DEPTH: usize = 10;
    let mut rng = Rng(0x94D0_49BB_1331_11EB);
    let (bids, asks) = full_book(DEPTH as u64, &mut rng);
    let mut model = OrderBook::new();
    model.load(&bids, &asks);
    let rule = Rule::Kraken {
        depth: DEPTH,
        price_precision: 1,
        qty_precision: 8,
    };
    let mut synced = LocalBook::new(rule);
    let snap = BookSeq::Kraken {
        checksum: checksum::kraken(&model, 1, 8),
    };
    assert_eq!(
        synced.apply(&snapshot_msg(bids, asks, snap)),
        Verdict::Snapshot
    );
    let obj = |levels: &[Level]| {
        levels
            .iter()
            .map(|l| format!(r#"{{"price":{},"qty":{}}}"#, l.price, l.qty))
            .collect::<Vec<_>>()
            .join(",")
    };
    let frames = (0..FRAMES)
        .map(|_| {
            let n = 1 + rng.below(3);
            let ch: Vec<_> = (0..n).map(|_| change(&mut rng, 12)).collect();
            let (b, a) = split(&ch);
            model.apply(&b, &a);
            model.truncate(DEPTH);
            let sum = checksum::kraken(&model, 1, 8);
            format!(
                r#"{{"channel":"book","type":"update","data":[{{"symbol":"BTC/USD","bids":[{}],"asks":[{}],"checksum":{sum},"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}"#,
                obj(&b),
                obj(&a)
            )
        })
        .collect();
    Shape {
        name: "kraken_book10_1to3lv_crc".into(),
        exchange: ExchangeKind::Kraken,
        synced,
        frames,
    }
}

/// Parse and apply every frame; returns the number of book messages.
fn run(
    exchange: ExchangeKind,
    book: &mut LocalBook,
    frames: &[String],
    out: &mut Vec<StreamMsg>,
) -> usize {
    let mut n = 0;
    for f in frames {
        out.clear();
        stream::parse_into(exchange, f, out).unwrap();
        for m in out.iter() {
            if let StreamMsg::Book(b) = m {
                let v = book.apply(b);
                assert!(matches!(v, Verdict::Applied), "{v:?}");
                n += 1;
            }
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_book");
    for shape in [
        binance(),
        bybit(),
        okx(Some(20), "okx_books_20lv"),
        okx(None, "okx_books_1to3lv"),
        coinbase(),
        kraken(),
    ] {
        // Validate the whole sequence once, outside the timing.
        let mut check = shape.synced.clone();
        let mut out = Vec::new();
        assert_eq!(
            run(shape.exchange, &mut check, &shape.frames, &mut out),
            FRAMES
        );
        assert!(check.is_valid());
        g.throughput(Throughput::Elements(FRAMES as u64));
        g.bench_function(&shape.name, |b| {
            b.iter_batched_ref(
                || (shape.synced.clone(), Vec::with_capacity(4)),
                |(book, out)| run(shape.exchange, book, &shape.frames, out),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();

    // Where the time goes, on the Binance shape: parsing alone, and
    // applying already-parsed messages alone.
    let shape = binance();
    let mut g = c.benchmark_group("stream_book_split");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("binance_parse_only", |b| {
        let mut out = Vec::with_capacity(4);
        b.iter(|| {
            let mut n = 0;
            for f in &shape.frames {
                out.clear();
                stream::parse_into(shape.exchange, f, &mut out).unwrap();
                n += out.len();
            }
            n
        })
    });
    let parsed: Vec<BookMsg> = shape
        .frames
        .iter()
        .map(|f| match stream::parse(shape.exchange, f).unwrap().pop() {
            Some(StreamMsg::Book(b)) => b,
            other => panic!("{other:?}"),
        })
        .collect();
    g.bench_function("binance_apply_only", |b| {
        b.iter_batched_ref(
            || shape.synced.clone(),
            |book| {
                for m in &parsed {
                    assert_eq!(book.apply(m), Verdict::Applied);
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
