"""asyncio.run with a deadline, for the tests that drive network peers: a peer that stops
answering fails the test instead of hanging the suite."""
import asyncio


def runner(default_timeout):
    """A run(coro, timeout=default_timeout) that gives up with asyncio.TimeoutError."""

    def run(coro, timeout=default_timeout):
        async def bounded():
            return await asyncio.wait_for(coro, timeout)

        return asyncio.run(bounded())

    return run
