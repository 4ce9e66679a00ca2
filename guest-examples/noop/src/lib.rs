//! `noop`: accepts every batch and does nothing with it. It measures what
//! the host and the sandbox cost, with no destination in the way.

use dlthost_sink::{BatchContext, Guest, Items, SinkError, SinkSpec, TableSchema};

struct Noop;

impl Guest for Noop {
    fn spec() -> SinkSpec {
        let mut spec = dlthost_sink::default_spec("noop");
        spec.batch_size = Some(1000);
        spec
    }

    fn load(_table: TableSchema, _ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        std::hint::black_box(items);
        Ok(())
    }
}

dlthost_sink::export_sink!(Noop);
