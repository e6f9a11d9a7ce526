"""The Keras 3 functional builders behind the registry; each imports Keras when called.

Every builder takes (input_shape, num_classes, *, seed, **spec kwargs), seeds each kernel
initializer from `seed` (one distinct seed per layer) and returns a `keras.Model` whose
penultimate layer is named `features` and whose final Dense is named `logits` (no softmax).
"""


class _Seeds:
  """Hands out distinct, reproducible per-layer seeds derived from one model seed."""

  def __init__(self, seed: int):
    self._next = int(seed) * 1000

  def __call__(self) -> int:
    self._next += 1
    return self._next


def _head(keras, features, num_classes, seeds, input_layer, name):
  logits = keras.layers.Dense(
      num_classes, name="logits",
      kernel_initializer=keras.initializers.GlorotUniform(seed=seeds()))(features)
  return keras.Model(input_layer, logits, name=name)


def build_linear(input_shape, num_classes, *, seed=0):
  """Logistic regression: (batch, *input_shape) -> Flatten `features` -> (batch, c) logits."""
  import keras  # pylint: disable=import-outside-toplevel
  seeds = _Seeds(seed)
  x = keras.Input(shape=input_shape)
  return _head(keras, keras.layers.Flatten(name="features")(x), num_classes, seeds, x, "linear")


def build_mlp(input_shape, num_classes, *, seed=0, width=256, depth=2):
  """Flatten, `depth` Dense(width, relu) layers (the last is `features`, width-d), logits."""
  import keras  # pylint: disable=import-outside-toplevel
  seeds = _Seeds(seed)
  x = inputs = keras.Input(shape=input_shape)
  x = keras.layers.Flatten()(x)
  for i in range(depth):
    x = keras.layers.Dense(
        width, activation="relu", name="features" if i == depth - 1 else None,
        kernel_initializer=keras.initializers.HeNormal(seed=seeds()))(x)
  return _head(keras, x, num_classes, seeds, inputs, f"mlp_w{width}_d{depth}")


def build_cnn(input_shape, num_classes, *, seed=0, width=32, depth=3):
  """`depth` Conv3x3(width)+relu layers, each followed by a 2x2 max-pool while H, W >= 2.

  Pooling stops once either spatial side drops below 2, so any depth fits any image size
  (8x8 digits pool 3 times: 8 -> 4 -> 2 -> 1). Global average pooling gives `features` (width-d).
  """
  import keras  # pylint: disable=import-outside-toplevel
  seeds = _Seeds(seed)
  x = inputs = keras.Input(shape=input_shape)
  h, w = input_shape[0], input_shape[1]
  for _ in range(depth):
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                            kernel_initializer=keras.initializers.HeNormal(seed=seeds()))(x)
    if h >= 2 and w >= 2:
      x = keras.layers.MaxPooling2D(2)(x)
      h, w = h // 2, w // 2
  x = keras.layers.GlobalAveragePooling2D(name="features")(x)
  return _head(keras, x, num_classes, seeds, inputs, f"cnn_w{width}_d{depth}")


def _conv(keras, seeds, filters, kernel, strides=1):
  return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                             kernel_initializer=keras.initializers.HeNormal(seed=seeds()))


def build_resnet(input_shape, num_classes, *, seed=0, depth=20):
  """CIFAR ResNet (He et al. 2016, sec. 4.2): conv3x3(16), 3 stages x n = (depth-2)/6 blocks.

  Basic blocks conv-BN-relu-conv-BN + shortcut, then relu; stages of 16/32/64 filters, the
  first block of stages 2 and 3 has stride 2 and a 1x1 conv + BN projection shortcut (option B;
  the paper's CIFAR nets use parameter-free option A). Convs have no bias (BN follows).
  Global average pooling gives `features` (64-d). ResNet-20 on 32x32x3, 10 classes: 272,474
  trainable parameters (BN moving statistics are not trainable).
  """
  import keras  # pylint: disable=import-outside-toplevel
  seeds = _Seeds(seed)
  bn = lambda: keras.layers.BatchNormalization()  # pylint: disable=unnecessary-lambda-assignment
  relu = lambda: keras.layers.ReLU()  # pylint: disable=unnecessary-lambda-assignment
  x = inputs = keras.Input(shape=input_shape)
  x = relu()(bn()(_conv(keras, seeds, 16, 3)(x)))
  for stage, filters in enumerate((16, 32, 64)):
    for block in range((depth - 2) // 6):
      strides = 2 if stage > 0 and block == 0 else 1
      y = relu()(bn()(_conv(keras, seeds, filters, 3, strides)(x)))
      y = bn()(_conv(keras, seeds, filters, 3)(y))
      if strides != 1 or x.shape[-1] != filters:
        x = bn()(_conv(keras, seeds, filters, 1, strides)(x))
      x = relu()(keras.layers.Add()([x, y]))
  x = keras.layers.GlobalAveragePooling2D(name="features")(x)
  return _head(keras, x, num_classes, seeds, inputs, f"resnet{depth}")


def build_wide_resnet(input_shape, num_classes, *, seed=0, depth=16, widen=4):
  """WRN-depth-widen (Zagoruyko & Komodakis 2016): conv3x3(16), 3 stages x n = (depth-4)/6.

  Pre-activation blocks BN-relu-conv3x3-BN-relu-conv3x3 + shortcut (a 1x1 conv of the
  pre-activated input when the shape changes), stages of 16k/32k/64k filters with strides
  1/2/2, no dropout; a final BN-relu and global average pooling give `features` (64k-d).
  """
  import keras  # pylint: disable=import-outside-toplevel
  seeds = _Seeds(seed)
  bn = lambda: keras.layers.BatchNormalization()  # pylint: disable=unnecessary-lambda-assignment
  relu = lambda: keras.layers.ReLU()  # pylint: disable=unnecessary-lambda-assignment
  x = inputs = keras.Input(shape=input_shape)
  x = _conv(keras, seeds, 16, 3)(x)
  for stage, filters in enumerate((16 * widen, 32 * widen, 64 * widen)):
    for block in range((depth - 4) // 6):
      strides = 2 if stage > 0 and block == 0 else 1
      pre = relu()(bn()(x))
      y = _conv(keras, seeds, filters, 3, strides)(pre)
      y = _conv(keras, seeds, filters, 3)(relu()(bn()(y)))
      if strides != 1 or x.shape[-1] != filters:
        x = _conv(keras, seeds, filters, 1, strides)(pre)
      x = keras.layers.Add()([x, y])
  x = relu()(bn()(x))
  x = keras.layers.GlobalAveragePooling2D(name="features")(x)
  return _head(keras, x, num_classes, seeds, inputs, f"wrn_{depth}_{widen}")
