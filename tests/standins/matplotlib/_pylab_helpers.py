"""pyplot's registry of open figure managers, by number."""


class Gcf:
    figs = {}

    @classmethod
    def get_all_fig_managers(cls):
        return list(cls.figs.values())

    @classmethod
    def get_fig_manager(cls, num):
        manager = cls.figs.get(num)
        if manager is not None:
            cls.set_active(manager)
        return manager

    @classmethod
    def get_active(cls):
        return next(reversed(cls.figs.values()), None)

    @classmethod
    def set_active(cls, manager):
        cls.figs.pop(manager.num, None)
        cls.figs[manager.num] = manager

    @classmethod
    def destroy(cls, num):
        cls.figs.pop(getattr(num, "num", num), None)

    @classmethod
    def destroy_fig(cls, fig):
        for num, manager in list(cls.figs.items()):
            if manager.canvas.figure is fig:
                del cls.figs[num]

    @classmethod
    def destroy_all(cls):
        cls.figs.clear()

    @classmethod
    def get_num_fig_managers(cls):
        return len(cls.figs)
