/*
 * http_phase.c: the phase engine and the filter chains.
 *
 * At load, every module's hooks are gathered and sorted by (phase, order)
 * into one flat array, nginx's ngx_http_init_phase_handlers without the
 * implicit ordering: each entry knows the index of the next phase's first
 * handler, so "phase done" is one assignment. The LOG phase is not run by
 * the engine but when the response is complete (pt_http_log_phase()).
 *
 * A handler's return value, by phase:
 *   PT_OK        this phase is done: go to the next phase
 *   PT_DECLINED  not mine: next handler (in CONTENT: the next candidate)
 *   PT_AGAIN     suspended: an event will call pt_http_run_phases() again,
 *                which re-enters the same handler
 *   PT_DONE      the handler finished the request (response queued)
 *   a status     finish with this status; PT_ERROR means 500
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "http.h"
#include "log.h"
#include "pool.h"

struct phase_entry {
	const struct pt_hook *hook;
	unsigned seq; /* module order, to keep qsort deterministic */
};

static int
phase_cmp(const void *a, const void *b)
{
	const struct phase_entry *x = a, *y = b;

	if (x->hook->phase != y->hook->phase)
		return x->hook->phase < y->hook->phase ? -1 : 1;
	if (x->hook->order != y->hook->order)
		return x->hook->order < y->hook->order ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
phase_generic(struct pt_http_request *r, const struct pt_http_phase *ph)
{
	int rc = ph->handler(r);

	if (rc == PT_OK) {
		r->phase = ph->next;
		return PT_AGAIN;
	}
	if (rc == PT_DECLINED) {
		r->phase++;
		return PT_AGAIN;
	}
	if (rc == PT_AGAIN)
		return PT_OK; /* suspended */
	pt_http_finalize(r, rc);
	return PT_OK;
}

static int
phase_content(struct pt_http_request *r, const struct pt_http_phase *ph)
{
	int rc = ph->handler(r);

	if (rc == PT_DECLINED) {
		r->phase++;
		return PT_AGAIN;
	}
	if (rc == PT_AGAIN)
		return PT_OK;
	pt_http_finalize(r, rc == PT_OK ? PT_DONE : rc);
	return PT_OK;
}

static int
phase_collect(struct pt_conf *cf, struct phase_entry **out, unsigned *n)
{
	unsigned cap = 0, k = 0;
	struct phase_entry *e;

	for (unsigned i = 0; pt_modules[i] != NULL; i++)
		for (const struct pt_hook *h = pt_modules[i]->hooks;
		     h != NULL && (h->handler || h->header_filter ||
				   h->body_filter);
		     h++)
			cap++;
	e = pt_pcalloc(cf->pool, (cap ? cap : 1) * sizeof(*e));
	if (e == NULL)
		return PT_ERROR;
	for (unsigned i = 0; pt_modules[i] != NULL; i++)
		for (const struct pt_hook *h = pt_modules[i]->hooks;
		     h != NULL && (h->handler || h->header_filter ||
				   h->body_filter);
		     h++) {
			e[k].hook = h;
			e[k].seq = k;
			k++;
		}
	qsort(e, k, sizeof(*e), phase_cmp);
	*out = e;
	*n = k;
	return PT_OK;
}

int
pt_http_build_engine(struct pt_conf *cf, struct pt_http_main_conf *mc)
{
	struct phase_entry *e;
	unsigned n, nph = 0, nh = 0, nb = 0;

	if (phase_collect(cf, &e, &n) != PT_OK)
		return PT_ERROR;
	for (unsigned i = 0; i < n; i++) {
		unsigned p = e[i].hook->phase;
		nph += p < PT_PHASE_COUNT;
		nh += p == PT_FILTER_HEADER;
		nb += p == PT_FILTER_BODY;
	}
	mc->engine = pt_pcalloc(cf->pool, (nph + 1) * sizeof(*mc->engine));
	mc->header_filters = pt_pcalloc(cf->pool, (nh + 1) * sizeof(void *));
	mc->body_filters = pt_pcalloc(cf->pool, (nb + 1) * sizeof(void *));
	if (mc->engine == NULL || mc->header_filters == NULL ||
	    mc->body_filters == NULL)
		return PT_ERROR;
	for (unsigned p = 0, k = 0; p <= PT_PHASE_COUNT; p++) {
		mc->engine_start[p] = k;
		while (k < nph && e[k].hook->phase == p)
			k++;
	}
	for (unsigned i = 0; i < nph; i++) {
		const struct pt_hook *h = e[i].hook;
		struct pt_http_phase *ph = &mc->engine[i];
		ph->handler = h->handler;
		ph->checker = h->phase == PT_PHASE_CONTENT ? phase_content
							   : phase_generic;
		ph->next = mc->engine_start[h->phase + 1];
	}
	for (unsigned i = nph; i < n; i++) {
		const struct pt_hook *h = e[i].hook;
		if (h->phase == PT_FILTER_HEADER)
			mc->header_filters[mc->nheader_filters++] =
				h->header_filter;
		else if (h->phase == PT_FILTER_BODY)
			mc->body_filters[mc->nbody_filters++] = h->body_filter;
	}
	PT_ASSERT(mc->nheader_filters > 0 && mc->nbody_filters > 0);
	return PT_OK;
}

static struct pt_http_main_conf *
phase_main(struct pt_http_request *r)
{
	return r->conn->ls->cycle->main_conf[PT_HTTP_CORE_INDEX];
}

void
pt_http_run_phases(struct pt_http_request *r)
{
	struct pt_http_main_conf *mc = phase_main(r);
	unsigned end = mc->engine_start[PT_PHASE_LOG];

	while (r->phase < end) {
		const struct pt_http_phase *ph = &mc->engine[r->phase];
		if (ph->checker(r, ph) == PT_OK)
			return;
	}
	/* every content handler declined */
	pt_http_finalize(r, 404);
}

void
pt_http_log_phase(struct pt_http_request *r)
{
	struct pt_http_main_conf *mc = phase_main(r);

	if (r->logged)
		return;
	r->logged = 1;
	for (unsigned i = mc->engine_start[PT_PHASE_LOG];
	     i < mc->engine_start[PT_PHASE_COUNT]; i++)
		(void)mc->engine[i].handler(r);
}

int
pt_http_send_header(struct pt_http_request *r)
{
	struct pt_http_main_conf *mc = phase_main(r);

	return mc->header_filters[0](r, 1);
}

int
pt_http_next_header_filter(struct pt_http_request *r, unsigned next)
{
	struct pt_http_main_conf *mc = phase_main(r);

	PT_ASSERT(next < mc->nheader_filters);
	return mc->header_filters[next](r, next + 1);
}

int
pt_http_output(struct pt_http_request *r, struct pt_chain *in)
{
	struct pt_http_main_conf *mc = phase_main(r);

	return mc->body_filters[0](r, in, 1);
}

int
pt_http_next_body_filter(struct pt_http_request *r, struct pt_chain *in,
			 unsigned next)
{
	struct pt_http_main_conf *mc = phase_main(r);

	PT_ASSERT(next < mc->nbody_filters);
	return mc->body_filters[next](r, in, next + 1);
}
