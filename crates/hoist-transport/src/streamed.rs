//! [`Streamed`]: a transport that passes the output of [`Cmd::live`] commands on line by line.

use crate::{Cmd, CommandLayer, LineSink, Output, Transport, TransportError};

/// Hands each line of a [`Cmd::live`] command's output to `on_line` while it runs; every other
/// command (hoist's own probes and polls) runs as with the inner transport. For code that runs
/// user-written commands among its own, such as a restart strategy.
pub struct Streamed<'a> {
    pub inner: &'a dyn Transport,
    pub on_line: LineSink<'a>,
}

impl CommandLayer for Streamed<'_> {
    fn inner(&self) -> &dyn Transport {
        self.inner
    }

    fn layer_exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        if cmd.live {
            self.inner.exec_streaming(cmd, self.on_line)
        } else {
            self.inner.exec(cmd)
        }
    }

    fn layer_exec_streaming(
        &self,
        cmd: &Cmd,
        on_line: LineSink<'_>,
    ) -> Result<Output, TransportError> {
        self.inner.exec_streaming(cmd, on_line)
    }
}
