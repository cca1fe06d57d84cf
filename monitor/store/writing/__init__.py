"""The SQL adapter of the store's write port (:class:`monitor.store.ports.HistoryWrite`), one
module per noun; :class:`monitor.store.writer.HistoryWriter` puts them together."""
