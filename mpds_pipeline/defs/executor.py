"""The code location's executor: Dagster's default one (multiprocess, or in process with
``execution: config: in_process: {}``, the same run config), which first tags the run
with its host and frees the pool slots that dead runs still hold (see pool_slots.py),
saying so at WARNING in the run's log. So a run killed with SIGKILL no longer makes
every later IMDb step wait forever: the next run of this machine takes the slot back.
"""

from __future__ import annotations

from dagster import Executor, ExecutorDefinition, InitExecutorContext, multi_or_in_process_executor

from .pool_slots import HOST_TAG, free_dead_slots, this_host


class SlotReclaimingExecutor(Executor):
    def __init__(self, inner: Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        instance, run = plan_context.instance, plan_context.dagster_run
        if run.tags.get(HOST_TAG) != this_host():
            instance.add_run_tags(run.run_id, {HOST_TAG: this_host()})
        free_dead_slots(instance, warn=plan_context.log.warning)
        yield from self._inner.execute(plan_context, execution_plan)


def _create(init_context: InitExecutorContext) -> Executor:
    return SlotReclaimingExecutor(multi_or_in_process_executor.executor_creation_fn(init_context))


slot_reclaiming_executor = ExecutorDefinition(
    name="multi_or_in_process_executor",
    config_schema=multi_or_in_process_executor.config_schema,
    executor_creation_fn=_create,
    requirements=multi_or_in_process_executor.get_requirements,
    description=__doc__,
)
