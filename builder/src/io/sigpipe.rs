//! Writing into a pipe whose reader may die. edgeforge restores SIGPIPE's
//! default action (so `edgeforge plan | head` just stops), which would also
//! kill the whole process when mksquashfs or an extraction stops reading
//! early, with no message. A thread that feeds such a pipe blocks SIGPIPE
//! first: its writes then fail with EPIPE (an error to report), and the
//! signal left pending for the thread goes away when the thread ends.

/// Blocks SIGPIPE for the calling thread, which must be one spawned to feed
/// a pipe (the block lasts as long as the thread).
pub fn block_in_this_thread() {
    // SAFETY: sigemptyset/sigaddset fill a local set; pthread_sigmask only
    // changes the calling thread's mask.
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
    }
}
