//! The embedded reference server's own tests: its router and faults without sockets, its
//! limits and loopback guard over real sockets, its robustness under generated input, and the
//! official JavaScript clients against it (`node`, ignored by default).

mod faults;
mod harness;
mod limits;
mod loopback;
mod node;
mod robustness;
mod router;
