"""The SQL adapter of the store's read port (:class:`monitor.store.ports.HistoryRead`), one
module per noun; :class:`monitor.store.reader.HistoryReader` puts them together."""
