/* test_lifetimes.c: scopes, contexts, promotion, rings and tier budgets
 * (frames and pools have their own suites).
 */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)


static void assert_stale(walloc_handle h) {
  ck_assert_ptr_null(walloc_handle_to_ptr(h));
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_STALE);
  uint8_t b;
  ck_assert_int_eq(walloc_read_data(h, 0, &b, 1), WALLOC_ERR_STALE);
}

static size_t tier_used(walloc_tier t) {
  walloc_tier_stats s;
  ck_assert_int_eq(walloc_tier_stats_get(t, &s), WALLOC_OK);
  return s.used;
}

/* ------------------------------------------------------------------------
   Scopes
   ------------------------------------------------------------------------ */
START_TEST(scope_allocations_go_stale_when_left) {
  walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  ck_assert_ptr_nonnull(s);
  ck_assert_uint_eq(walloc_scope_used(s), 0);
  walloc_handle h[40];
  size_t total = 0;
  for (int i = 0; i < 40; i++) {
    size_t n = 1 + (size_t)i * 997 % 40000; /* some above 16 KiB: chunks of their own */
    h[i] = walloc_scope_allocate(s, n);
    ck_assert_uint_ne(h[i], WALLOC_NULL_HANDLE);
    ck_assert_uint_ge(walloc_handle_size(h[i]), n);
    total += walloc_handle_size(h[i]);
    fill_handle(h[i], n, (uint32_t)i);
  }
  ck_assert_uint_eq(walloc_scope_used(s), total);
  for (int i = 0; i < 40; i++) ck_assert(check_handle(h[i], 1 + (size_t)i * 997 % 40000, (uint32_t)i));
  /* owned blocks are released with their scope, not one by one */
  ck_assert_int_eq(walloc_deallocate(h[3]), WALLOC_ERR_INVALID);
  ck_assert(check_handle(h[3], 1 + 3 * 997 % 40000, 3));
  walloc_scope_leave(s);
  for (int i = 0; i < 40; i++) assert_stale(h[i]);
}
END_TEST

START_TEST(scope_handles_stay_stale_across_many_scopes) {
  enum { ROUNDS = 3000 };
  /* a scope's first block comes from the library's slow path (it takes a
     chunk), the second from the bump path (inline in this file) */
  static walloc_handle first[ROUNDS], second[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    walloc_scope *s = walloc_scope_enter(WALLOC_TIER_SCENE, 0);
    first[r] = walloc_scope_allocate(s, 100);
    second[r] = walloc_scope_allocate(s, 40);
    fill_handle(first[r], 100, (uint32_t)r);
    fill_handle(second[r], 40, (uint32_t)r + 1);
    ck_assert(check_handle(first[r], 100, (uint32_t)r));
    if (r % 100 == 99) { /* every earlier handle is refused while this scope's blocks are live at the
                            offsets some of them named (a stale match would read live data) */
      for (int k = 0; k < r; k++) {
        ck_assert_ptr_null(walloc_handle_to_ptr(first[k]));
        ck_assert_ptr_null(walloc_handle_to_ptr(second[k]));
      }
    }
    walloc_scope_leave(s);
    if (r % 100 == 99) {
      for (int k = 0; k <= r; k++) ck_assert_ptr_null(walloc_handle_to_ptr(first[k]));
    }
  }
}
END_TEST

static void nest(int depth, int max, walloc_tier tier) {
  walloc_scope *s = walloc_scope_enter(tier, 0);
  ck_assert_ptr_nonnull(s);
  walloc_handle h = walloc_scope_allocate(s, 64 + (size_t)depth);
  fill_handle(h, 64 + (size_t)depth, (uint32_t)depth);
  walloc_handle inner_probe = WALLOC_NULL_HANDLE;
  if (depth < max) {
    walloc_scope *probe = walloc_scope_enter(tier, 0);
    inner_probe = walloc_scope_allocate(probe, 32);
    walloc_scope_leave(probe);
    nest(depth + 1, max, tier);
  }
  ck_assert(check_handle(h, 64 + (size_t)depth, (uint32_t)depth)); /* inner scopes left it alone */
  if (inner_probe != WALLOC_NULL_HANDLE) assert_stale(inner_probe);
  walloc_scope_leave(s);
  assert_stale(h);
}

START_TEST(scopes_nest_deeper_than_64) {
  wl_test_wasm_tiers(256 * MiB); /* more than the wasm default share */
  nest(1, 64, WALLOC_TIER_ENTITY);
  nest(1, 300, WALLOC_TIER_RENDER);
}
END_TEST

START_TEST(scope_macro_leaves_at_block_end) {
  walloc_handle h;
  {
    WALLOC_SCOPE(s, WALLOC_TIER_ENTITY, 0);
    h = walloc_scope_allocate(s, 200);
    fill_handle(h, 200, 9);
    ck_assert(check_handle(h, 200, 9));
  }
  assert_stale(h);
}
END_TEST

START_TEST(scopes_left_out_of_order) {
  walloc_scope *a = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  walloc_scope *b = walloc_scope_enter(WALLOC_TIER_SCENE, 0);
  walloc_scope *c = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  walloc_handle ha = walloc_scope_allocate(a, 50), hb = walloc_scope_allocate(b, 50), hc = walloc_scope_allocate(c, 50);
  fill_handle(ha, 50, 1);
  fill_handle(hb, 50, 2);
  fill_handle(hc, 50, 3);
  walloc_scope_leave(b); /* c is inside b: it is left with it */
  assert_stale(hb);
  assert_stale(hc);
  ck_assert(check_handle(ha, 50, 1));
  walloc_scope_leave(c); /* already left: reported, nothing happens */
  walloc_scope_leave(b);
  ck_assert_uint_eq(walloc_scope_allocate(c, 10), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_STALE);
  ck_assert(check_handle(ha, 50, 1));
  walloc_scope *d = walloc_scope_enter(WALLOC_TIER_ENTITY, 0); /* a is still open and encloses d */
  walloc_handle hd = walloc_scope_allocate(d, 50);
  fill_handle(hd, 50, 4);
  walloc_scope_leave(a);
  assert_stale(ha);
  assert_stale(hd);
  walloc_scope_leave(d);
  ck_assert_uint_eq(walloc_scope_allocate(NULL, 10), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  walloc_scope_leave(NULL);
  ck_assert_ptr_null(walloc_scope_enter(WALLOC_TIER_FALLBACK, 0));
  ck_assert_ptr_null(walloc_scope_enter((walloc_tier)42, 0));
}
END_TEST

START_TEST(scope_budgets_count_exact_sizes) {
  /* blocks take their size rounded up to the tier's granule (32 bytes in
     the entity tier, 64 in the scene tier), not a power of two */
  walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 1000);
  ck_assert_uint_ne(walloc_scope_allocate(s, 600), WALLOC_NULL_HANDLE); /* 608 */
  ck_assert_uint_ne(walloc_scope_allocate(s, 300), WALLOC_NULL_HANDLE); /* 320: 928 */
  ck_assert_uint_eq(walloc_scope_used(s), 928);
  ck_assert_uint_eq(walloc_scope_allocate(s, 100), WALLOC_NULL_HANDLE); /* 128 more: 1,056 */
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_BUDGET);
  ck_assert_uint_ne(walloc_scope_allocate(s, 64), WALLOC_NULL_HANDLE);  /* 992 */
  ck_assert_uint_eq(walloc_scope_allocate(s, 1), WALLOC_NULL_HANDLE);   /* 32 more: 1,024 */
  walloc_scope_leave(s);
  walloc_scope *big = walloc_scope_enter(WALLOC_TIER_SCENE, 0);
  walloc_handle h = walloc_scope_allocate(big, 20000);
  ck_assert_uint_eq(walloc_handle_size(h), 20032);
  ck_assert_uint_eq(walloc_scope_used(big), 20032);
  walloc_scope_leave(big);
}
END_TEST

START_TEST(scope_budgets_refuse_and_nest) {
  walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 1024);
  int n = 0;
  while (walloc_scope_allocate(s, 64) != WALLOC_NULL_HANDLE) n++;
  ck_assert_int_eq(n, 16);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_BUDGET);
  ck_assert_uint_eq(walloc_scope_used(s), 1024);
  walloc_scope_leave(s);

  walloc_scope *outer = walloc_scope_enter(WALLOC_TIER_ENTITY, 4096);
  ck_assert_uint_ne(walloc_scope_allocate(outer, 1024), WALLOC_NULL_HANDLE);
  walloc_scope *mid = walloc_scope_enter(WALLOC_TIER_SCENE, 0);       /* no budget of its own */
  walloc_scope *inner = walloc_scope_enter(WALLOC_TIER_ENTITY, 100000); /* a larger one than outer's */
  ck_assert_uint_ne(walloc_scope_allocate(inner, 2048), WALLOC_NULL_HANDLE);
  ck_assert_uint_eq(walloc_scope_allocate(mid, 2048), WALLOC_NULL_HANDLE); /* outer: 1024 + 2048 + 2048 > 4096 */
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_BUDGET);
  ck_assert_uint_ne(walloc_scope_allocate(mid, 1024), WALLOC_NULL_HANDLE); /* exactly 4096 */
  ck_assert_uint_eq(walloc_scope_allocate(inner, 1), WALLOC_NULL_HANDLE);
  walloc_scope_leave(inner); /* its 2048 go back to outer */
  ck_assert_uint_ne(walloc_scope_allocate(mid, 2048), WALLOC_NULL_HANDLE);
  ck_assert_uint_eq(walloc_scope_allocate(outer, 1), WALLOC_NULL_HANDLE);
  walloc_scope_leave(mid);
  ck_assert_uint_ne(walloc_scope_allocate(outer, 2048), WALLOC_NULL_HANDLE); /* mid's bytes came back */
  ck_assert_uint_ne(walloc_scope_allocate(outer, 1024), WALLOC_NULL_HANDLE);
  ck_assert_uint_eq(walloc_scope_allocate(outer, 1), WALLOC_NULL_HANDLE);
  ck_assert_uint_eq(walloc_scope_allocate(outer, WL_TEST_POW2(40)), WALLOC_NULL_HANDLE); /* never crashes */
  walloc_scope_leave(outer);
}
END_TEST

START_TEST(scope_memory_goes_back_to_the_tier) {
  wl_test_wasm_tiers(256 * MiB); /* more than the wasm default share */
  size_t before = tier_used(WALLOC_TIER_ENTITY);
  for (int r = 0; r < 50; r++) {
    walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
    for (int i = 0; i < 200; i++) ck_assert_uint_ne(walloc_scope_allocate(s, 1000 + (size_t)i * 300), WALLOC_NULL_HANDLE);
    ck_assert_uint_gt(tier_used(WALLOC_TIER_ENTITY), before + 5 * MiB);
    walloc_scope_leave(s);
    /* blocks over 16 KiB went back; the 64 KiB chunks the small ones drew
       (10 here) stay with the thread for its next scopes */
    ck_assert_uint_le(tier_used(WALLOC_TIER_ENTITY), before + 12 * 64 * KiB);
  }
  /* a long run of small scopes gives the rest back */
  for (int r = 0; r < 2 * 64 + 1; r++) {
    walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
    ck_assert_uint_ne(walloc_scope_allocate(s, 100), WALLOC_NULL_HANDLE);
    walloc_scope_leave(s);
  }
  ck_assert_uint_le(tier_used(WALLOC_TIER_ENTITY), before + 64 * KiB);
}
END_TEST

/* A reset of the tier while a scope is open takes the scope's chunk: the
   scope's next blocks come from a new one, with handles of the new
   generation, and never overlap what the tier hands out after the reset
   (walloc.h's inline path must see the generation change). */
START_TEST(scope_goes_on_after_a_tier_reset) {
  enum { N = 300 };
  walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  ck_assert_ptr_nonnull(s);
  walloc_handle before = walloc_scope_allocate(s, 64);
  ck_assert_uint_ne(before, WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_reset_tier(WALLOC_TIER_ENTITY), WALLOC_OK);
  assert_stale(before);
  static walloc_handle mine[N], tiers[N];
  for (int i = 0; i < N; i++) {
    tiers[i] = walloc_allocate(64, WALLOC_TIER_ENTITY);
    mine[i] = walloc_scope_allocate(s, 64);
    ck_assert_uint_ne(tiers[i], WALLOC_NULL_HANDLE);
    ck_assert_uint_ne(mine[i], WALLOC_NULL_HANDLE);
    fill_handle(tiers[i], 64, (uint32_t)i);
    fill_handle(mine[i], 64, (uint32_t)(N + i));
  }
  for (int i = 0; i < N; i++) {
    ck_assert(check_handle(tiers[i], 64, (uint32_t)i));
    ck_assert(check_handle(mine[i], 64, (uint32_t)(N + i)));
  }
  /* the block the reset took still counts until the scope is left */
  ck_assert_uint_eq(walloc_scope_used(s), (N + 1) * 64);
  walloc_scope_leave(s);
  for (int i = 0; i < N; i++) assert_stale(mine[i]);
  for (int i = 0; i < N; i++) ck_assert(check_handle(tiers[i], 64, (uint32_t)i));
}
END_TEST

static walloc_scope *foreign_scope;
static void *use_foreign_scope(void *arg) {
  (void)arg;
  walloc_handle h = walloc_scope_allocate(foreign_scope, 10);
  walloc_status st = walloc_last_status();
  walloc_scope_leave(foreign_scope); /* refused */
  return (void *)(uintptr_t)(h == WALLOC_NULL_HANDLE && st == WALLOC_ERR_INVALID);
}

START_TEST(scopes_belong_to_their_thread) {
  WL_WASM_SKIP_THREADS();
  foreign_scope = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  walloc_handle h = walloc_scope_allocate(foreign_scope, 10);
  pthread_t t;
  void *ok;
  pthread_create(&t, NULL, use_foreign_scope, NULL);
  pthread_join(t, &ok);
  ck_assert(ok != NULL);
  ck_assert_ptr_nonnull(walloc_handle_to_ptr(h)); /* the other thread's leave did nothing */
  walloc_scope_leave(foreign_scope);
  assert_stale(h);
}
END_TEST

enum { SCOPE_THREADS = 8, SCOPE_ROUNDS = 1500 };
static void *scope_worker(void *arg) {
  uint32_t id = (uint32_t)(uintptr_t)arg;
  uint64_t rng = id * 7919u + 3;
  walloc_tier tier = id % 3 == 0 ? WALLOC_TIER_RENDER : id % 3 == 1 ? WALLOC_TIER_SCENE : WALLOC_TIER_ENTITY;
  for (int r = 0; r < SCOPE_ROUNDS; r++) {
    int depth = 1 + (int)(wl_test_rand(&rng) % 4);
    walloc_scope *s[4];
    walloc_handle h[4][8];
    size_t n[4][8];
    for (int d = 0; d < depth; d++) {
      s[d] = walloc_scope_enter(tier, d == 0 ? 256 * KiB : 0);
      for (int i = 0; i < 8; i++) {
        n[d][i] = 1 + wl_test_rand(&rng) % 3000;
        h[d][i] = walloc_scope_allocate(s[d], n[d][i]);
        if (h[d][i] == WALLOC_NULL_HANDLE) return (void *)1;
        wl_test_fill(walloc_handle_to_ptr(h[d][i]), n[d][i], id * 100000 + (uint32_t)(d * 8 + i));
      }
    }
    for (int d = depth; d-- > 0;) {
      for (int i = 0; i < 8; i++) {
        uint8_t *p = walloc_handle_to_ptr(h[d][i]);
        if (p == NULL || wl_test_check(p, n[d][i], id * 100000 + (uint32_t)(d * 8 + i)) != n[d][i]) return (void *)2;
      }
      walloc_scope_leave(s[d]);
      if (walloc_handle_to_ptr(h[d][0]) != NULL) return (void *)3;
    }
  }
  return NULL;
}

START_TEST(scopes_in_8_threads) {
  WL_WASM_SKIP_THREADS();
  wl_test_run_workers(SCOPE_THREADS, scope_worker, "scope worker");
}
END_TEST

/* ------------------------------------------------------------------------
   Contexts
   ------------------------------------------------------------------------ */
START_TEST(context_reset_reaches_children) {
  walloc_context *root = walloc_context_create(WALLOC_TIER_SCENE, NULL);
  walloc_context *kid = walloc_context_create(WALLOC_TIER_ENTITY, root);
  walloc_context *grandkid = walloc_context_create(WALLOC_TIER_ENTITY, kid);
  walloc_context *other = walloc_context_create(WALLOC_TIER_ENTITY, NULL);
  ck_assert_ptr_nonnull(grandkid);
  walloc_handle hr = walloc_context_allocate(root, 300), hk = walloc_context_allocate(kid, 50000),
                hg = walloc_context_allocate(grandkid, 20), ho = walloc_context_allocate(other, 20);
  fill_handle(hr, 300, 1);
  fill_handle(hk, 50000, 2);
  fill_handle(hg, 20, 3);
  fill_handle(ho, 20, 4);
  ck_assert_int_eq(walloc_deallocate(hk), WALLOC_ERR_INVALID);
  walloc_context_reset(kid); /* kid and grandkid only */
  assert_stale(hk);
  assert_stale(hg);
  ck_assert(check_handle(hr, 300, 1));
  hk = walloc_context_allocate(kid, 100);
  hg = walloc_context_allocate(grandkid, 100);
  ck_assert_uint_ne(hg, WALLOC_NULL_HANDLE);
  walloc_context_reset(root); /* the whole tree */
  assert_stale(hr);
  assert_stale(hk);
  assert_stale(hg);
  ck_assert(check_handle(ho, 20, 4)); /* another tree is untouched */
  ck_assert_ptr_eq(walloc_context_retain(kid), kid);
  walloc_context_release(kid);
  walloc_context_release(grandkid);
  walloc_context_release(kid);
  walloc_context_release(root);
  walloc_context_release(other);
}
END_TEST

START_TEST(context_release_does_not_free_silently) {
  walloc_context *root = walloc_context_create(WALLOC_TIER_SCENE, NULL);
  walloc_context *kid = walloc_context_create(WALLOC_TIER_SCENE, root);
  walloc_handle h = walloc_context_allocate(kid, 1000);
  fill_handle(h, 1000, 5);
  walloc_context_release(kid); /* last reference, but it owns a block */
  ck_assert(check_handle(h, 1000, 5));
  walloc_context_reset(root); /* the parent's reset reclaims it */
  assert_stale(h);
  walloc_context_release(root);

  walloc_context *lone = walloc_context_create(WALLOC_TIER_ENTITY, NULL);
  walloc_handle g = walloc_context_allocate(lone, 64);
  fill_handle(g, 64, 6);
  walloc_context_release(lone);
  ck_assert(check_handle(g, 64, 6)); /* kept until the tier is reset */
  ck_assert_int_eq(walloc_reset_tier(WALLOC_TIER_ENTITY), WALLOC_OK);
  assert_stale(g);
  ck_assert_ptr_null(walloc_context_create(WALLOC_TIER_FALLBACK, NULL));
  ck_assert_uint_eq(walloc_context_allocate(NULL, 8), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
}
END_TEST

static walloc_context *shared_ctx;
/* A context keeps the chunks its rounds draw from one reset to the next
   (warm memory, as a scope's thread keeps them), and gives them back when
   it goes. */
START_TEST(context_memory_goes_back_to_the_tier) {
  wl_test_wasm_tiers(256 * MiB);
  size_t before = tier_used(WALLOC_TIER_ENTITY);
  walloc_context *c = walloc_context_create(WALLOC_TIER_ENTITY, NULL);
  ck_assert_ptr_nonnull(c);
  for (int r = 0; r < 20; r++) {
    for (int i = 0; i < 200; i++) ck_assert_uint_ne(walloc_context_allocate(c, 1000 + (size_t)i * 10), WALLOC_NULL_HANDLE);
    ck_assert_uint_gt(tier_used(WALLOC_TIER_ENTITY), before + 300 * KiB);
    walloc_context_reset(c);
    /* the 64 KiB chunks the round drew (7) are kept for the next */
    ck_assert_uint_le(tier_used(WALLOC_TIER_ENTITY), before + 12 * 64 * KiB);
  }
  walloc_context_release(c); /* owns nothing: it goes, with its chunks */
  ck_assert_uint_eq(tier_used(WALLOC_TIER_ENTITY), before);
}
END_TEST

static void *context_worker(void *arg) {
  uint32_t id = (uint32_t)(uintptr_t)arg;
  walloc_handle h[500];
  for (int i = 0; i < 500; i++) {
    h[i] = walloc_context_allocate(shared_ctx, 16 + (size_t)(i % 50) * 13);
    if (h[i] == WALLOC_NULL_HANDLE) return (void *)1;
    wl_test_fill(walloc_handle_to_ptr(h[i]), 16 + (size_t)(i % 50) * 13, id * 1000 + (uint32_t)i);
  }
  for (int i = 0; i < 500; i++) {
    if (!check_handle(h[i], 16 + (size_t)(i % 50) * 13, id * 1000 + (uint32_t)i)) return (void *)2;
  }
  return NULL;
}

START_TEST(contexts_are_shared_by_threads) {
  WL_WASM_SKIP_THREADS();
  shared_ctx = walloc_context_create(WALLOC_TIER_ENTITY, NULL);
  /* the creating thread allocates without the lock until others come */
  walloc_handle before[100], after[100];
  for (int i = 0; i < 100; i++) {
    before[i] = walloc_context_allocate(shared_ctx, 40);
    ck_assert_uint_ne(before[i], WALLOC_NULL_HANDLE);
    fill_handle(before[i], 40, 70000 + (uint32_t)i);
  }
  wl_test_run_workers(8, context_worker, "context worker");
  for (int i = 0; i < 100; i++) {
    after[i] = walloc_context_allocate(shared_ctx, 40);
    ck_assert_uint_ne(after[i], WALLOC_NULL_HANDLE);
    fill_handle(after[i], 40, 80000 + (uint32_t)i);
  }
  for (int i = 0; i < 100; i++) {
    ck_assert(check_handle(before[i], 40, 70000 + (uint32_t)i));
    ck_assert(check_handle(after[i], 40, 80000 + (uint32_t)i));
  }
  walloc_context_reset(shared_ctx);
  for (int i = 0; i < 100; i++) assert_stale(after[i]);
  walloc_context_release(shared_ctx);
}
END_TEST

/* A context's own thread allocates from it (without its lock) while
   another thread resets it over and over. Every block whose allocation
   finished before a reset began must be stale once that reset is done: a
   reset that gave a chunk back while the context's thread was still
   writing a slot entry in it would leave that block live, in memory the
   tier now hands to others. The resetter also takes blocks from the tier
   after each reset and checks them. The context's thread touches no
   memory: after a reset from elsewhere that would be the program's race. */
static walloc_context *raced_ctx;
static atomic_int race_done;
static atomic_uint resets_begun, resets_done;
static void *context_resetter(void *arg) {
  (void)arg;
  enum { N = 16 };
  walloc_handle mine[N];
  for (uint32_t round = 0; !atomic_load(&race_done); round++) {
    atomic_fetch_add(&resets_begun, 1);
    walloc_context_reset(raced_ctx);
    atomic_fetch_add(&resets_done, 1);
    for (int i = 0; i < N; i++) {
      mine[i] = walloc_allocate(32, WALLOC_TIER_ENTITY);
      if (mine[i] == WALLOC_NULL_HANDLE) return (void *)1;
      fill_handle(mine[i], 32, round * N + (uint32_t)i);
    }
    for (int i = 0; i < N; i++) {
      if (!check_handle(mine[i], 32, round * N + (uint32_t)i)) return (void *)2;
      if (walloc_deallocate(mine[i]) != WALLOC_OK) return (void *)3;
    }
  }
  return NULL;
}

START_TEST(context_reset_by_another_thread_while_its_thread_allocates) {
  WL_WASM_SKIP_THREADS();
  /* if the resetter is not scheduled for a while, the context holds every
     block made meanwhile: up to 12.8 MB, more than wasm's default share */
  wl_test_wasm_tiers(256 * MiB);
  enum { RING = 256 };
  /* valgrind runs one thread at a time, 50 times slower: fewer there */
  const int allocations = getenv("CK_TIMEOUT_MULTIPLIER") != NULL ? 40000 : 400000;
  raced_ctx = walloc_context_create(WALLOC_TIER_ENTITY, NULL);
  ck_assert_ptr_nonnull(raced_ctx);
  atomic_store(&race_done, 0);
  atomic_store(&resets_begun, 0);
  atomic_store(&resets_done, 0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, context_resetter, NULL), 0);
  static walloc_handle ring[RING];
  static unsigned begun[RING]; /* resets begun when the allocation had finished */
  unsigned head = 0, tail = 0, checked = 0;
  for (int i = 0; i < allocations; i++) {
    walloc_handle h = walloc_context_allocate(raced_ctx, 32);
    ck_assert_msg(h != WALLOC_NULL_HANDLE, "allocation %d of the context failed: %s", i,
                  walloc_status_str(walloc_last_status()));
    unsigned b = atomic_load(&resets_begun);
    if (head - tail == RING) tail++; /* the oldest waited long enough: dropped unchecked */
    ring[head % RING] = h;
    begun[head % RING] = b;
    head++;
    while (tail != head && atomic_load(&resets_done) > begun[tail % RING]) { /* a later reset is done */
      ck_assert_ptr_null(walloc_handle_to_ptr(ring[tail % RING]));
      tail++;
      checked++;
    }
  }
  atomic_store(&race_done, 1);
  void *ret;
  pthread_join(t, &ret);
  ck_assert_ptr_null(ret);
  ck_assert_uint_gt(checked, 100); /* the resets did overlap the allocations */
  printf("context race: %d allocations, %u checked stale after a later reset\n", allocations, checked);
  /* still its thread's: a block after the last reset is live */
  walloc_handle h = walloc_context_allocate(raced_ctx, 100);
  fill_handle(h, 100, 5);
  ck_assert(check_handle(h, 100, 5));
  walloc_context_reset(raced_ctx);
  assert_stale(h);
  walloc_context_release(raced_ctx);
}
END_TEST

/* ------------------------------------------------------------------------
   Promotion
   ------------------------------------------------------------------------ */
START_TEST(promotion_of_every_size_class) {
  wl_test_wasm_tiers(256 * MiB); /* more than the wasm default share */
  const walloc_tier path[] = {WALLOC_TIER_ENTITY, WALLOC_TIER_SCENE, WALLOC_TIER_RENDER, WALLOC_TIER_FALLBACK};
  for (size_t size = 1; size <= 4 * MiB; size = size < 32 ? size + 15 : size * 2) {
    walloc_handle h = walloc_allocate(size, WALLOC_TIER_ENTITY);
    ck_assert_uint_ne(h, WALLOC_NULL_HANDLE);
    fill_handle(h, size, (uint32_t)size);
    for (int step = 1; step < 4; step++) {
      walloc_handle n = walloc_promote(h, path[step]);
      ck_assert_msg(n != WALLOC_NULL_HANDLE, "size %zu to tier %d", size, (int)path[step]);
      ck_assert(check_handle(n, size, (uint32_t)size));
      assert_stale(h); /* the old block was released */
      h = n;
    }
    ck_assert_int_eq(walloc_deallocate(h), WALLOC_OK);
  }
  /* a scope's block is copied, and stays until its scope is left */
  walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  walloc_handle sh = walloc_scope_allocate(s, 700);
  fill_handle(sh, 700, 77);
  walloc_handle kept = walloc_promote(sh, WALLOC_TIER_SCENE);
  ck_assert(check_handle(sh, 700, 77));
  walloc_scope_leave(s);
  assert_stale(sh);
  ck_assert(check_handle(kept, 700, 77));
  ck_assert_uint_eq(walloc_promote(sh, WALLOC_TIER_SCENE), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_STALE);
  ck_assert_uint_eq(walloc_promote(kept, (walloc_tier)9), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  ck_assert(check_handle(kept, 700, 77));
}
END_TEST

START_TEST(promotion_into_a_full_tier_fails_cleanly) {
  walloc_config cfg = {64 * MiB, {50, 30, 20}, {0, 0, 0}};
  ck_assert_int_eq(walloc_init(&cfg), WALLOC_OK);
  walloc_handle big = walloc_allocate(8 * MiB, WALLOC_TIER_ENTITY);
  fill_handle(big, 8 * MiB, 3);
  while (walloc_allocate(4 * MiB, WALLOC_TIER_SCENE) != WALLOC_NULL_HANDLE) {}
  ck_assert_uint_eq(walloc_promote(big, WALLOC_TIER_SCENE), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_NOMEM);
  ck_assert(check_handle(big, 8 * MiB, 3)); /* the source is kept when the copy fails */
}
END_TEST

/* ------------------------------------------------------------------------
   Rings
   ------------------------------------------------------------------------ */
typedef struct ring_rec_s {
  walloc_handle h;
  size_t n;
  uint32_t seed;
} ring_rec_t;

START_TEST(ring_over_10000_frames_with_3_in_flight) {
  enum { FRAMES = 10000, IN_FLIGHT = 3, PER_FRAME = 12 };
  walloc_ring *ring = walloc_ring_create(WALLOC_TIER_RENDER, 256 * KiB);
  ck_assert_ptr_nonnull(ring);
  static ring_rec_t rec[FRAMES][PER_FRAME];
  uint64_t rng = 12345;
  for (uint64_t f = 0; f < FRAMES; f++) {
    if (f >= IN_FLIGHT) { /* the consumer is done with frame f - 3: check it, then retire */
      uint64_t old = f - IN_FLIGHT;
      for (uint64_t g = old; g < f; g++) {
        for (int i = 0; i < PER_FRAME; i++) {
          ck_assert_msg(check_handle(rec[g][i].h, rec[g][i].n, rec[g][i].seed), "frame %llu block %d",
                        (unsigned long long)g, i);
        }
      }
      walloc_ring_retire(ring, old);
      for (int i = 0; i < PER_FRAME; i++) ck_assert_ptr_null(walloc_handle_to_ptr(rec[old][i].h));
    }
    ck_assert_int_eq(walloc_ring_begin_frame(ring, f), WALLOC_OK);
    for (int i = 0; i < PER_FRAME; i++) {
      size_t n = 1 + wl_test_rand(&rng) % 4000;
      walloc_handle h = walloc_ring_allocate(ring, n);
      ck_assert_msg(h != WALLOC_NULL_HANDLE, "frame %llu block %d", (unsigned long long)f, i);
      ck_assert_uint_eq((uintptr_t)walloc_handle_to_ptr(h) % 128, 0);
      rec[f][i] = (ring_rec_t){h, n, (uint32_t)(f * 31 + (uint64_t)i)};
      fill_handle(h, n, rec[f][i].seed);
    }
  }
  walloc_ring_destroy(ring);
  for (int i = 0; i < PER_FRAME; i++) ck_assert_ptr_null(walloc_handle_to_ptr(rec[FRAMES - 1][i].h));
}
END_TEST

START_TEST(ring_never_overruns_a_live_frame) {
  walloc_ring *ring = walloc_ring_create(WALLOC_TIER_SCENE, 4 * KiB);
  ck_assert_uint_eq(walloc_ring_allocate(ring, 16), WALLOC_NULL_HANDLE); /* outside a frame */
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  ck_assert_int_eq(walloc_ring_begin_frame(ring, 10), WALLOC_OK);
  ck_assert_int_eq(walloc_ring_begin_frame(ring, 10), WALLOC_ERR_INVALID); /* frames go forward */
  walloc_handle h[64];
  int n = 0;
  while (n < 64 && (h[n] = walloc_ring_allocate(ring, 100)) != WALLOC_NULL_HANDLE) {
    fill_handle(h[n], 100, (uint32_t)n);
    n++;
  }
  ck_assert_int_eq(n, 32); /* 4 KiB of 128-byte blocks */
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_NOMEM);
  ck_assert_int_eq(walloc_ring_begin_frame(ring, 11), WALLOC_OK);
  ck_assert_uint_eq(walloc_ring_allocate(ring, 100), WALLOC_NULL_HANDLE); /* frame 10 still in flight */
  for (int i = 0; i < n; i++) ck_assert(check_handle(h[i], 100, (uint32_t)i));
  walloc_ring_retire(ring, 10);
  walloc_handle again = walloc_ring_allocate(ring, 2000);
  ck_assert_uint_ne(again, WALLOC_NULL_HANDLE);
  assert_stale(h[0]);
  ck_assert_uint_eq(walloc_ring_allocate(ring, 8 * KiB), WALLOC_NULL_HANDLE); /* larger than the ring */
  ck_assert_int_eq(walloc_deallocate(again), WALLOC_ERR_INVALID);
  walloc_ring_destroy(ring);
  ck_assert_ptr_null(walloc_ring_create(WALLOC_TIER_FALLBACK, 4096));
  ck_assert_ptr_null(walloc_ring_create(WALLOC_TIER_RENDER, 0));
  ck_assert_int_eq(walloc_ring_begin_frame(NULL, 1), WALLOC_ERR_INVALID);
}
END_TEST

/* ------------------------------------------------------------------------
   Budgets
   ------------------------------------------------------------------------ */
static int soft_calls;
static size_t soft_used;
static void on_soft(walloc_tier tier, size_t used, size_t limit, void *arg) {
  ck_assert_int_eq(tier, WALLOC_TIER_ENTITY);
  ck_assert_uint_gt(used, limit);
  ck_assert_ptr_eq(arg, &soft_calls);
  soft_used = used;
  soft_calls++;
}

START_TEST(tier_budget_applies_to_every_path) {
  ck_assert_int_eq(walloc_set_budget(WALLOC_TIER_ENTITY, 512 * KiB, 1 * MiB, on_soft, &soft_calls), WALLOC_OK);
  ck_assert_int_eq(walloc_set_budget(WALLOC_TIER_ENTITY, 2 * MiB, 1 * MiB, NULL, NULL), WALLOC_ERR_INVALID);
  walloc_handle h[40];
  int n = 0;
  while (n < 40 && (h[n] = walloc_allocate(32 * KiB, WALLOC_TIER_ENTITY)) != WALLOC_NULL_HANDLE) n++;
  ck_assert_int_eq(n, 32); /* exactly 1 MiB of 32 KiB blocks */
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_BUDGET);
  ck_assert_int_eq(soft_calls, 1); /* once, when 512 KiB was crossed */
  ck_assert_uint_eq(soft_used, 512 * KiB + 32 * KiB);
  ck_assert_uint_eq(walloc_allocate(8, WALLOC_TIER_ENTITY), WALLOC_NULL_HANDLE); /* small ones too */
  /* scopes, contexts, promotion and rings all take from the same budget */
  walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  ck_assert_uint_eq(walloc_scope_allocate(s, 16), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_BUDGET);
  walloc_scope_leave(s);
  walloc_context *c = walloc_context_create(WALLOC_TIER_ENTITY, NULL);
  ck_assert_uint_eq(walloc_context_allocate(c, 16), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_BUDGET);
  walloc_handle scene = walloc_allocate(1000, WALLOC_TIER_SCENE);
  fill_handle(scene, 1000, 8);
  ck_assert_uint_eq(walloc_promote(scene, WALLOC_TIER_ENTITY), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_BUDGET);
  ck_assert(check_handle(scene, 1000, 8));
  ck_assert_ptr_null(walloc_ring_create(WALLOC_TIER_ENTITY, 4096));
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_BUDGET);
  /* freeing gives room back; dropping under the soft limit re-arms it */
  for (int i = 0; i < 20; i++) ck_assert_int_eq(walloc_deallocate(h[i]), WALLOC_OK);
  walloc_handle ch = walloc_context_allocate(c, 16);
  ck_assert_uint_ne(ch, WALLOC_NULL_HANDLE);
  for (int i = 0; i < 20; i++) h[i] = walloc_allocate(16 * KiB, WALLOC_TIER_ENTITY);
  ck_assert_int_eq(soft_calls, 2);
  /* a reset empties the count; a budget of 0,0 turns it off */
  ck_assert_int_eq(walloc_reset_tier(WALLOC_TIER_ENTITY), WALLOC_OK);
  n = 0;
  while (n < 40 && walloc_allocate(32 * KiB, WALLOC_TIER_ENTITY) != WALLOC_NULL_HANDLE) n++;
  ck_assert_int_eq(n, 32);
  ck_assert_int_eq(walloc_set_budget(WALLOC_TIER_ENTITY, 0, 0, NULL, NULL), WALLOC_OK);
  ck_assert_uint_ne(walloc_allocate(32 * KiB, WALLOC_TIER_ENTITY), WALLOC_NULL_HANDLE);
  walloc_context_release(c);
}
END_TEST

START_TEST(budget_counts_what_the_tier_holds_and_fallback) {
  walloc_handle h = walloc_allocate(600 * KiB, WALLOC_TIER_SCENE); /* a block of exactly that */
  ck_assert_int_eq(walloc_set_budget(WALLOC_TIER_SCENE, 0, 600 * KiB + 64 * KiB, NULL, NULL), WALLOC_OK);
  ck_assert_uint_eq(walloc_allocate(128 * KiB, WALLOC_TIER_SCENE), WALLOC_NULL_HANDLE);
  ck_assert_uint_ne(walloc_allocate(64 * KiB, WALLOC_TIER_SCENE), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_deallocate(h), WALLOC_OK);
  ck_assert_uint_ne(walloc_allocate(512 * KiB, WALLOC_TIER_SCENE), WALLOC_NULL_HANDLE);

  ck_assert_int_eq(walloc_set_budget(WALLOC_TIER_FALLBACK, 0, 10000, NULL, NULL), WALLOC_OK);
  walloc_handle f = walloc_allocate(6000, WALLOC_TIER_FALLBACK);
  ck_assert_uint_ne(f, WALLOC_NULL_HANDLE);
  ck_assert_uint_eq(walloc_allocate(6000, WALLOC_TIER_FALLBACK), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_BUDGET);
  ck_assert_int_eq(walloc_deallocate(f), WALLOC_OK);
  ck_assert_uint_ne(walloc_allocate(6000, WALLOC_TIER_FALLBACK), WALLOC_NULL_HANDLE);
  ck_assert_int_eq(walloc_set_budget((walloc_tier)7, 0, 1, NULL, NULL), WALLOC_ERR_INVALID);
}
END_TEST

enum { BUDGET_THREADS = 8 };
static _Atomic(size_t) budget_granted;
static void *budget_worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 2000; i++) {
    if (walloc_allocate(1024, WALLOC_TIER_RENDER) != WALLOC_NULL_HANDLE) atomic_fetch_add(&budget_granted, 1024);
  }
  return NULL;
}

START_TEST(hard_budget_holds_under_threads) {
  WL_WASM_SKIP_THREADS();
  ck_assert_int_eq(walloc_set_budget(WALLOC_TIER_RENDER, 0, 4 * MiB, NULL, NULL), WALLOC_OK);
  pthread_t t[BUDGET_THREADS];
  for (int i = 0; i < BUDGET_THREADS; i++) pthread_create(&t[i], NULL, budget_worker, NULL);
  for (int i = 0; i < BUDGET_THREADS; i++) pthread_join(t[i], NULL);
  ck_assert_uint_eq(atomic_load(&budget_granted), 4 * MiB); /* never more, and all of it */
}
END_TEST

/* ------------------------------------------------------------------------
   Debug builds say what outlived its scope or context
   ------------------------------------------------------------------------ */
#if WL_DEBUG > 0
static void use_after_leave(void) {
  walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  walloc_handle h = walloc_scope_allocate(s, 32);
  walloc_scope_leave(s);
  uint8_t b = 0;
  ck_assert_int_eq(walloc_write_data(h, 0, &b, 1), WALLOC_ERR_STALE);
}
static void leave_out_of_order(void) {
  walloc_scope *a = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  walloc_scope_leave(a);
}
static void release_with_blocks(void) {
  walloc_context *c = walloc_context_create(WALLOC_TIER_ENTITY, NULL);
  walloc_context_allocate(c, 10);
  walloc_context_release(c);
}
static void clean_scope(void) {
  WALLOC_SCOPE(s, WALLOC_TIER_ENTITY, 0);
  ck_assert(check_handle(walloc_scope_allocate(s, 8), 0, 0));
}

START_TEST(debug_builds_report_what_outlived_its_owner) {
  ck_assert(!wl_test_stderr_has(clean_scope, "walloc"));
  ck_assert(wl_test_stderr_has(use_after_leave, "stale or invalid handle"));
  ck_assert(wl_test_stderr_has(leave_out_of_order, "out of order"));
  ck_assert(wl_test_stderr_has(release_with_blocks, "still owns blocks"));
}
END_TEST
#endif

Suite *wl_test_suite(void) {
  Suite *s = suite_create("lifetimes");
  WL_TCASE(s, "scopes", 120, scope_allocations_go_stale_when_left, scope_handles_stay_stale_across_many_scopes,
           scopes_nest_deeper_than_64, scope_macro_leaves_at_block_end, scopes_left_out_of_order,
           scope_budgets_count_exact_sizes, scope_budgets_refuse_and_nest, scope_memory_goes_back_to_the_tier,
           scope_goes_on_after_a_tier_reset, scopes_belong_to_their_thread,
           scopes_in_8_threads);
  WL_TCASE(s, "contexts", 60, context_reset_reaches_children, context_release_does_not_free_silently,
           context_memory_goes_back_to_the_tier,
           contexts_are_shared_by_threads, context_reset_by_another_thread_while_its_thread_allocates);
  WL_TCASE(s, "promotion", 60, promotion_of_every_size_class, promotion_into_a_full_tier_fails_cleanly);
  WL_TCASE(s, "rings", 120, ring_over_10000_frames_with_3_in_flight, ring_never_overruns_a_live_frame);
  WL_TCASE(s, "budgets", 60, tier_budget_applies_to_every_path, budget_counts_what_the_tier_holds_and_fallback,
           hard_budget_holds_under_threads);
#if WL_DEBUG > 0
  WL_TCASE(s, "debug", 30, debug_builds_report_what_outlived_its_owner);
#endif
  return s;
}
