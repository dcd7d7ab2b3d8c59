//! A network of its own for the browser in a crawl: a fresh network
//! namespace (Linux) holding nothing but a loopback interface, where the
//! gate (gate.rs) listens. Whatever the browser sends, it can reach
//! nothing but the gate: WebRTC's UDP included, which goes around any
//! proxy (Chromium 156 sends STUN, TURN and connectivity checks to the
//! loopback and unique-local addresses a page names, whatever its
//! `--force-webrtc-ip-handling-policy`).
//!
//! The namespace is made in the browser's process between fork and exec
//! (a process with one thread may also make a user namespace, which gives
//! a user without privileges the right to make the network namespace
//! within it). The gate's listening socket is made there too, in the new
//! namespace, and handed to scriptscrape over a Unix socket: scriptscrape
//! accepts the browser's connections on it and connects onwards from its
//! own namespace, after the private-network rule has allowed them.

use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd as _, OwnedFd, RawFd};

/// Where the gate listens in the browser's namespace: any port is free in
/// a namespace that has just been made.
pub const GATE_PORT: u16 = 1080;

/// The two ends of the socket the listener is handed over on: scriptscrape
/// keeps the first, the browser's process gets the second.
pub fn channel() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two fds into the array, which has room for
    // them; each is then owned by one OwnedFd only.
    unsafe {
        if libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// In the browser's process, before exec: moves it to a network namespace
/// of its own, brings its loopback up, listens on [`GATE_PORT`] there and
/// sends the listening socket over `channel`. When that fails, what failed
/// is sent instead ([`failure`] reads it), so that scriptscrape can tell
/// it from the browser failing to start.
///
/// # Safety
/// Runs between fork and exec: only async-signal-safe calls, nothing
/// allocated. `channel` must be an open Unix datagram socket.
#[cfg(target_os = "linux")]
pub unsafe fn enter(channel: RawFd) -> io::Result<()> {
    let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: every call below is a plain system call on memory owned by
    // this frame; the caller guarantees the fork-to-exec context.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            let alone = errno();
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                let with_user = errno();
                return Err(report(channel, [alone, with_user, 0]));
            }
        }
        let listener = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if listener < 0 {
            return Err(report(channel, [0, 0, errno()]));
        }
        let result = loopback_up(listener)
            .and_then(|()| listen(listener))
            .and_then(|()| send(channel, listener))
            .map_err(|e| report(channel, [0, 0, e.raw_os_error().unwrap_or(0)]));
        libc::close(listener);
        result
    }
}

/// Sends what failed (the errors of unshare alone, of unshare with a user
/// namespace, of setting the namespace up) and returns the last error.
#[cfg(target_os = "linux")]
unsafe fn report(channel: RawFd, errors: [i32; 3]) -> io::Error {
    // SAFETY: send reads the array it is given, which lives in this frame.
    unsafe {
        libc::send(
            channel,
            errors.as_ptr().cast(),
            std::mem::size_of_val(&errors),
            0,
        );
    }
    let last = errors.iter().rev().find(|&&e| e != 0).copied();
    io::Error::from_raw_os_error(last.unwrap_or(libc::EINVAL))
}

/// Why the browser's process could not have a network of its own, when
/// that is why it did not start: what [`enter`] sent, in words.
#[cfg(target_os = "linux")]
pub fn failure(channel: &OwnedFd) -> Option<String> {
    use std::os::fd::AsRawFd as _;
    let mut errors = [0i32; 3];
    // SAFETY: recv writes at most the array's size into it.
    let got = unsafe {
        libc::recv(
            channel.as_raw_fd(),
            errors.as_mut_ptr().cast(),
            std::mem::size_of_val(&errors),
            libc::MSG_DONTWAIT,
        )
    };
    if got != std::mem::size_of_val(&errors) as isize {
        return None;
    }
    let text = |e: i32| io::Error::from_raw_os_error(e).to_string();
    Some(match errors {
        [alone, with_user, 0] => format!(
            "unshare: {}; with a user namespace: {}",
            text(alone),
            text(with_user)
        ),
        [_, _, setup] => format!("cannot set its network up: {}", text(setup)),
    })
}

/// Sets the loopback interface of the current namespace up (a new
/// namespace has it down).
#[cfg(target_os = "linux")]
unsafe fn loopback_up(socket: RawFd) -> io::Result<()> {
    // SAFETY: ifreq is plain data, zero is a valid value of it; the ioctls
    // read and write only that struct.
    unsafe {
        let mut request: libc::ifreq = std::mem::zeroed();
        for (to, from) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *to = *from as libc::c_char;
        }
        if libc::ioctl(socket, libc::SIOCGIFFLAGS as _, &mut request) != 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket, libc::SIOCSIFFLAGS as _, &request) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
unsafe fn listen(socket: RawFd) -> io::Result<()> {
    // SAFETY: sockaddr_in is plain data, zero is a valid value of it;
    // bind reads exactly its size.
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = GATE_PORT.to_be();
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(socket, (&raw const addr).cast(), size) != 0 || libc::listen(socket, 128) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Room for one control message carrying one fd, aligned as cmsghdr.
#[cfg(target_os = "linux")]
#[repr(C, align(8))]
struct Control([u8; 64]);

/// Sends `fd` over the Unix socket `channel` (SCM_RIGHTS).
#[cfg(target_os = "linux")]
unsafe fn send(channel: RawFd, fd: RawFd) -> io::Result<()> {
    // SAFETY: msghdr and the control buffer are plain data owned by this
    // frame, the control buffer has room for one fd's message (checked by
    // the assertion), and the CMSG macros stay within it.
    unsafe {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = Control([0; 64]);
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        debug_assert!(space <= control.0.len());
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &raw mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.0.as_mut_ptr().cast();
        message.msg_controllen = space as _;
        let header = libc::CMSG_FIRSTHDR(&raw const message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        libc::CMSG_DATA(header).cast::<RawFd>().write_unaligned(fd);
        if libc::sendmsg(channel, &raw const message, 0) != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In scriptscrape, once the browser's process has been started: the
/// listener it sent over `channel`, if any.
#[cfg(target_os = "linux")]
pub fn receive(channel: &OwnedFd) -> io::Result<TcpListener> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: as in `send`; recvmsg writes at most msg_controllen bytes of
    // control data, and the fd read from it is new to this process (the
    // kernel installed it), so it is owned by the listener alone.
    unsafe {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = Control([0; 64]);
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &raw mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.0.as_mut_ptr().cast();
        message.msg_controllen = control.0.len() as _;
        let got = libc::recvmsg(
            channel.as_raw_fd(),
            &raw mut message,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        );
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        let header = libc::CMSG_FIRSTHDR(&raw const message);
        if header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::other("the browser's process sent no socket"));
        }
        let fd = libc::CMSG_DATA(header).cast::<RawFd>().read_unaligned();
        Ok(TcpListener::from_raw_fd(fd))
    }
}

/// Network namespaces are Linux's: elsewhere the browser is not isolated
/// (the gate then listens on loopback, mod.rs).
///
/// # Safety
/// None needed: it does nothing.
#[cfg(not(target_os = "linux"))]
pub unsafe fn enter(_: RawFd) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(not(target_os = "linux"))]
pub fn failure(_: &OwnedFd) -> Option<String> {
    None
}

#[cfg(not(target_os = "linux"))]
pub fn receive(_: &OwnedFd) -> io::Result<TcpListener> {
    Err(io::ErrorKind::Unsupported.into())
}
