//! A small allocator for the npm package's wasm: size classes of powers of
//! two, each with a free list, carved from `memory.grow`. Freed blocks are
//! reused by the next allocation of their class and never returned to the
//! host (wasm memory cannot shrink anyway).
//!
//! Why not dlmalloc (Rust's default on wasm32): it is ~4 KB of code for
//! general-purpose fragmentation handling this workload does not need. The
//! allocations here recur in a few shapes (span records, strings, request
//! bodies), so rounding up to a power of two wastes at most half of a block
//! and every freed block is found again by the next one of its size.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

/// Classes 2^4 (16 bytes) .. 2^31.
const MIN_SHIFT: u32 = 4;
const CLASSES: usize = 28;
const PAGE: usize = 65536;

pub struct SizeClasses {
    state: UnsafeCell<State>,
}

struct State {
    /// Heads of the free lists (0: empty); a free block's first word links the next.
    free: [usize; CLASSES],
    /// The unused rest of the last grown region.
    next: usize,
    end: usize,
}

// SAFETY: wasm32 without threads (see js_abi's module docs).
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    pub const fn new() -> SizeClasses {
        SizeClasses { state: UnsafeCell::new(State { free: [0; CLASSES], next: 0, end: 0 }) }
    }
}

/// The class of `layout`: blocks of 2^(class + MIN_SHIFT) bytes, aligned to
/// their size up to 64 KiB (so any alignment a layout asks for holds).
fn class(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    let shift = usize::BITS - (size - 1).leading_zeros();
    let c = (shift - MIN_SHIFT) as usize;
    (c < CLASSES).then_some(c)
}

unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(layout) else { return core::ptr::null_mut() };
        // SAFETY: single-threaded; no reentrancy (nothing here allocates).
        let s = unsafe { &mut *self.state.get() };
        let head = s.free[c];
        if head != 0 {
            // SAFETY: `head` is a free block of this class; its first word links the next.
            s.free[c] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        let size = 1usize << (c as u32 + MIN_SHIFT);
        // Aligned to the block size up to a page: enough for any alignment asked.
        let align = size.min(PAGE);
        let start = (s.next + align - 1) & !(align - 1);
        if start.checked_add(size).is_none_or(|e| e > s.end) {
            let pages = size.div_ceil(PAGE) + 1;
            let grown = core::arch::wasm32::memory_grow(0, pages);
            if grown == usize::MAX {
                return core::ptr::null_mut();
            }
            let base = grown * PAGE;
            // A new region continues the old one when memory grew contiguously.
            if base != s.end {
                s.next = base;
            }
            s.end = base + pages * PAGE;
            let start = (s.next + align - 1) & !(align - 1);
            s.next = start + size;
            return start as *mut u8;
        }
        s.next = start + size;
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(c) = class(layout) else { return };
        // SAFETY: single-threaded; `ptr` came from `alloc` with this class.
        let s = unsafe { &mut *self.state.get() };
        unsafe { *(ptr as *mut usize) = s.free[c] };
        s.free[c] = ptr as usize;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Growing within the block's class keeps the block.
        let new = Layout::from_size_align(new_size, layout.align()).ok();
        if new.and_then(class) == class(layout) {
            return ptr;
        }
        // SAFETY: as GlobalAlloc::realloc's default, with our alloc/dealloc.
        unsafe {
            let out = self.alloc(new.unwrap_or(layout));
            if !out.is_null() {
                core::ptr::copy_nonoverlapping(ptr, out, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            out
        }
    }
}
