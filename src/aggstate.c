/*
 * aggstate.c: the memory context of segtier's expanded aggregate states.
 *
 * The states of cuts, share_cuts and kmeans (FloatBag, cuts.c) and of the
 * model fits (optimize.c) are expanded objects that their transition and
 * combine functions change in place and grow.  All the states of one
 * aggregate context live in one child context of it: with a context each,
 * a hash aggregation of many groups was quadratic, as it sums its memory
 * over every child context at each new group (cuts of 10k, 20k and 40k
 * groups: 1.5, 2.5 and 8.3 s).  So the executor must never delete one of
 * them, which it would do to the old state if a function returned another
 * object (deleting the shared context, every group's state): the functions
 * return the object they were given, and resetting the aggregate's context
 * deletes them all.
 */
#include "segtier.h"

#include "utils/memutils.h"

#define STATES_CONTEXT_NAME "segtier aggregate states"

/*
 * The memory context for a new expanded state: inside an aggregate the one
 * its states share, found by name among its context's children; outside,
 * one of its own in the current context.
 */
MemoryContext
segtier_state_context(FunctionCallInfo fcinfo)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		return AllocSetContextCreate(CurrentMemoryContext, "segtier aggregate state",
									 ALLOCSET_START_SMALL_SIZES);
	for (MemoryContext c = aggcxt->firstchild; c != NULL; c = c->nextchild)
		if (strcmp(c->name, STATES_CONTEXT_NAME) == 0)
			return c;
	return AllocSetContextCreate(aggcxt, STATES_CONTEXT_NAME, ALLOCSET_DEFAULT_SIZES);
}
