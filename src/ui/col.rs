//! The columns of the exchanges panel, shared by its REST rows
//! (`exchanges.rs`) and its stream rows (`stream_rows.rs`).

/// A column of the exchanges panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    Exchange,
    Endpoint,
    Breaker,
    Spark,
    P50,
    P99,
    Err,
    Limit,
    Wait,
    Age,
    Poll,
    Last,
}

impl Col {
    /// The header of the column.
    pub fn title(self) -> &'static str {
        match self {
            Col::Exchange => "EXCHANGE",
            Col::Endpoint => "ENDPOINT",
            Col::Breaker => "BREAKER",
            Col::Spark => "LATENCY",
            Col::P50 => "P50",
            Col::P99 => "P99",
            Col::Err => "ERR",
            Col::Limit => "LIMITER",
            Col::Wait => "WAITED",
            Col::Age => "AGE",
            Col::Poll => "POLL",
            Col::Last => "LAST",
        }
    }
}
