def fit_cascade(*a, **k):
    raise NotImplementedError
