// When stream window goes back to an HTTP/2 peer, for streams whose window follows their reader
// (the grpc/http client stream, h2mux streams): the reader's consumption is what opens the window,
// so a stream nobody reads holds at most one window of the peer's bytes in our process. Inside a
// read batch of the connection the returns add up and go out as one WINDOW_UPDATE at its end (not
// one per DATA frame); a reader catching up outside a batch returns its window at once.

/// The stream window a reader gave back and not yet sent to the peer. A value owned by the
/// handler that carries the stream; loop-confined with it.
struct HTTP2WindowReturn {
    /// Between a read of the connection and its read-complete.
    private(set) var inReadBatch = false
    /// Window taken by the reader during the current read batch.
    private var held = 0

    /// A read of the connection begins (a frame arrived).
    mutating func beginReadBatch() { inReadBatch = true }

    /// The reader took `increment` flow-controlled bytes: the increment to send now (outside a
    /// read batch), or nil when it waits for the batch's end.
    mutating func readerTook(_ increment: Int) -> Int? {
        guard increment > 0 else { return nil }
        guard inReadBatch else { return increment }
        held += increment
        return nil
    }

    /// The read batch ended: the increment to send now, if any.
    mutating func endReadBatch() -> Int? {
        inReadBatch = false
        let increment = held
        held = 0
        return increment > 0 ? increment : nil
    }
}
